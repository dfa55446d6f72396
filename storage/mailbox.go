package storage

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// MessageType is the kind of a mailbox message (SBD-style).
type MessageType uint8

const (
	MsgNone  MessageType = iota
	MsgFence             // poison pill: destroy your protected VMs, then acknowledge
	MsgTest              // prove the path end to end; acknowledge, do nothing else
	MsgClear             // withdraw an earlier request
)

var msgNames = [...]string{"none", "fence", "test", "clear"}

func (t MessageType) String() string {
	if int(t) < len(msgNames) {
		return msgNames[t]
	}
	return fmt.Sprintf("message(%d)", t)
}

// Message is what one host leaves in another's mailbox.
type Message struct {
	Type    MessageType
	From    int    // sender's host id
	FromGen uint64 // sender's slot generation
	To      int    // target host id
	ToGen   uint64 // the target generation the message is meant for
	Nonce   uint64 // identifies this message; the target's ack names it
	Wall    time.Time
	Reason  string
}

// For reports whether the message is addressed to the holder of generation
// gen. A poison pill for an older generation is stale and must be ignored.
func (m Message) For(gen uint64) bool { return m.Type != MsgNone && m.ToGen == gen }

const mailRecLen = 256

var mailMagic = []byte("WGMB")

func (m *Message) encode() []byte {
	b := make([]byte, BlockSize)
	e := b[:mailRecLen]
	copy(e[0:4], mailMagic)
	le.PutUint16(e[4:], FormatVersion)
	le.PutUint16(e[6:], mailRecLen)
	e[8] = byte(m.Type)
	le.PutUint16(e[10:], uint16(m.From))
	le.PutUint16(e[12:], uint16(m.To))
	le.PutUint64(e[16:], m.FromGen)
	le.PutUint64(e[24:], m.ToGen)
	le.PutUint64(e[32:], m.Nonce)
	le.PutUint64(e[40:], uint64(m.Wall.UnixNano()))
	putString(e[48:176], m.Reason)
	sealRecord(e)
	return b
}

func decodeMessage(b []byte) (Message, error) {
	e := b[:mailRecLen]
	if allZero(e) {
		return Message{}, nil
	}
	if !bytes.Equal(e[0:4], mailMagic) {
		return Message{}, fmt.Errorf("%w: not a mailbox record", ErrCorrupt)
	}
	if v := le.Uint16(e[4:]); v != FormatVersion {
		return Message{}, fmt.Errorf("%w: mailbox record version %d", ErrVersion, v)
	}
	if !recordOK(e) {
		return Message{}, fmt.Errorf("%w: mailbox checksum mismatch (torn write or damaged block)", ErrCorrupt)
	}
	return Message{Type: MessageType(e[8]), From: int(le.Uint16(e[10:])), To: int(le.Uint16(e[12:])),
		FromGen: le.Uint64(e[16:]), ToGen: le.Uint64(e[24:]), Nonce: le.Uint64(e[32:]),
		Wall: time.Unix(0, int64(le.Uint64(e[40:]))), Reason: getString(e[48:176])}, nil
}

// SendMessage writes m into m.To's mailbox, replacing any earlier message.
// A zero Nonce is replaced by a random one; the message as written is returned.
// The target acknowledges in its heartbeat slot (SlotRecord.Ack).
func (l *LUN) SendMessage(ctx context.Context, m Message) (Message, error) {
	if err := l.hdr.Geometry.checkHost(l.Path(), m.To); err != nil {
		return m, err
	}
	if err := l.hdr.Geometry.checkHost(l.Path(), m.From); err != nil {
		return m, err
	}
	if m.Type == MsgNone || m.Type > MsgClear {
		return m, fmt.Errorf("send to host %d: %w: message type %v", m.To, ErrInvalid, m.Type)
	}
	if m.Nonce == 0 {
		m.Nonce = randomNonce()
	}
	if m.Wall.IsZero() {
		m.Wall = time.Now()
	}
	if _, err := l.write(ctx, l.hdr.Geometry.mailboxBlock(m.To)*BlockSize, m.encode()); err != nil {
		return m, fmt.Errorf("send %v to host %d: %w", m.Type, m.To, err)
	}
	return m, nil
}

// ReadMailbox reads host's mailbox. An empty mailbox gives Type MsgNone.
// Of a set of 3 it takes the newest valid message any member holds (a
// fence only makes its target stop, so one seen anywhere is obeyed); it
// fails only when no member holds a valid one and one holds damage.
func (l *LUN) ReadMailbox(ctx context.Context, host int) (Message, error) {
	if err := l.hdr.Geometry.checkHost(l.Path(), host); err != nil {
		return Message{}, err
	}
	block := l.hdr.Geometry.mailboxBlock(host)
	bufs, err := l.readEach(ctx, false, block*BlockSize, BlockSize)
	if err != nil {
		return Message{}, fmt.Errorf("read mailbox of host %d: %w", host, err)
	}
	var newest Message
	var bad error
	for _, b := range bufs {
		if b == nil {
			continue
		}
		m, err := decodeMessage(b)
		hint := "the sender should send its message again"
		if err == nil && m.Type != MsgNone && m.To != host {
			err, hint = fmt.Errorf("%w: message addressed to host %d", ErrCorrupt, m.To), "check the storage"
		}
		switch {
		case err != nil:
			if bad == nil {
				bad = l.blockErr(block, fmt.Sprintf("mailbox %d", host), err, hint)
			}
		case m.Type != MsgNone && (newest.Type == MsgNone || m.Wall.After(newest.Wall) || (m.Wall.Equal(newest.Wall) && m.Type == MsgFence)):
			newest = m
		}
	}
	if newest.Type == MsgNone && bad != nil {
		return Message{}, bad
	}
	return newest, nil
}

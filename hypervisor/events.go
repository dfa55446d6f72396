package hypervisor

import (
	"context"
	"fmt"
	"time"

	"libvirt.org/go/libvirt"
)

// Subscribe returns a stream of domain events on this host. The stream
// starts with an EventResync ("subscribed") so that the consumer lists the
// domains after subscribing, and carries another EventResync whenever events
// may have been lost (buffer overflow, reconnect). It is closed when ctx ends
// or the Conn is closed.
//
// The stream never blocks libvirt: events wait in a buffer of
// Config.EventBuffer entries, and a consumer that falls further behind gets
// a resync marker instead of the events it missed.
func (c *Conn) Subscribe(ctx context.Context) <-chan Event {
	q := newEventQueue(c.cfg.EventBuffer)
	q.push(Event{Kind: EventResync, Detail: "subscribed", Received: time.Now()})
	out := make(chan Event)
	c.subsMu.Lock()
	c.subs[q] = struct{}{}
	c.subsMu.Unlock()
	go func() {
		defer func() {
			c.subsMu.Lock()
			delete(c.subs, q)
			c.subsMu.Unlock()
			close(out)
		}()
		for {
			ev, ok := q.pop()
			if !ok {
				select {
				case <-q.notify:
					continue
				case <-ctx.Done():
					return
				case <-c.done:
					return
				}
			}
			if ev.Received.IsZero() {
				ev.Received = time.Now()
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			case <-c.done:
				return
			}
		}
	}()
	return out
}

// publish hands ev to every subscription without blocking.
func (c *Conn) publish(ev Event) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for q := range c.subs {
		q.push(ev)
	}
}

// The callbacks below run on libvirt's event loop goroutine: they only read
// the domain's name and UUID (no RPC) and hand the event on.

func (c *Conn) onLifecycle(_ *libvirt.Connect, d *libvirt.Domain, ev *libvirt.DomainEventLifecycle) {
	name, _ := d.GetName()
	uuid, _ := d.GetUUIDString()
	kind, detail := lifecycleKind(ev.Event, ev.Detail)
	c.publish(Event{Kind: kind, Domain: name, UUID: uuid, Detail: detail, Received: time.Now()})
	c.change.signal()
}

func (c *Conn) onIOError(_ *libvirt.Connect, d *libvirt.Domain, ev *libvirt.DomainEventIOErrorReason) {
	name, _ := d.GetName()
	uuid, _ := d.GetUUIDString()
	detail := ioErrorActionName(ev.Action)
	if ev.Reason != "" {
		detail += ": " + ev.Reason
	}
	if ev.SrcPath != "" {
		detail += " (" + ev.SrcPath + ")"
	}
	c.publish(Event{Kind: EventIOError, Domain: name, UUID: uuid, Detail: detail, Received: time.Now()})
}

func (c *Conn) onJobCompleted(_ *libvirt.Connect, d *libvirt.Domain, ev *libvirt.DomainEventJobCompleted) {
	uuid, err := d.GetUUIDString()
	if err != nil {
		return
	}
	c.jobsMu.Lock()
	ch := c.jobs[uuid]
	c.jobsMu.Unlock()
	if ch != nil {
		select {
		case ch <- ev.Info:
		default: // the waiter has one already; Migrate keeps the first
		}
	}
}

func ioErrorActionName(a libvirt.DomainEventIOErrorAction) string {
	switch a {
	case libvirt.DOMAIN_EVENT_IO_ERROR_NONE:
		return "none"
	case libvirt.DOMAIN_EVENT_IO_ERROR_PAUSE:
		return "pause"
	case libvirt.DOMAIN_EVENT_IO_ERROR_REPORT:
		return "report"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// lifecycleDetails names libvirt's lifecycle event details, per event type.
var lifecycleDetails = map[libvirt.DomainEventType]map[int]string{
	libvirt.DOMAIN_EVENT_DEFINED: {
		int(libvirt.DOMAIN_EVENT_DEFINED_ADDED):         "added",
		int(libvirt.DOMAIN_EVENT_DEFINED_UPDATED):       "updated",
		int(libvirt.DOMAIN_EVENT_DEFINED_RENAMED):       "renamed",
		int(libvirt.DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT): "from-snapshot",
	},
	libvirt.DOMAIN_EVENT_UNDEFINED: {
		int(libvirt.DOMAIN_EVENT_UNDEFINED_REMOVED): "removed",
		int(libvirt.DOMAIN_EVENT_UNDEFINED_RENAMED): "renamed",
	},
	libvirt.DOMAIN_EVENT_STARTED: {
		int(libvirt.DOMAIN_EVENT_STARTED_BOOTED):        "booted",
		int(libvirt.DOMAIN_EVENT_STARTED_MIGRATED):      "migrated",
		int(libvirt.DOMAIN_EVENT_STARTED_RESTORED):      "restored",
		int(libvirt.DOMAIN_EVENT_STARTED_FROM_SNAPSHOT): "from-snapshot",
		int(libvirt.DOMAIN_EVENT_STARTED_WAKEUP):        "wakeup",
		int(libvirt.DOMAIN_EVENT_STARTED_RECREATED):     "recreated",
	},
	libvirt.DOMAIN_EVENT_SUSPENDED: {
		int(libvirt.DOMAIN_EVENT_SUSPENDED_PAUSED):          "paused",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_MIGRATED):        "migrated",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_IOERROR):         "ioerror",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_WATCHDOG):        "watchdog",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_RESTORED):        "restored",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT):   "from-snapshot",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_API_ERROR):       "api-error",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_POSTCOPY):        "post-copy",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED): "post-copy-failed",
		int(libvirt.DOMAIN_EVENT_SUSPENDED_GUEST_SHUTDOWN):  "guest-shutdown",
	},
	libvirt.DOMAIN_EVENT_RESUMED: {
		int(libvirt.DOMAIN_EVENT_RESUMED_UNPAUSED):        "unpaused",
		int(libvirt.DOMAIN_EVENT_RESUMED_MIGRATED):        "migrated",
		int(libvirt.DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT):   "from-snapshot",
		int(libvirt.DOMAIN_EVENT_RESUMED_POSTCOPY):        "post-copy",
		int(libvirt.DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED): "post-copy-failed",
	},
	libvirt.DOMAIN_EVENT_STOPPED: {
		int(libvirt.DOMAIN_EVENT_STOPPED_SHUTDOWN):      "shutdown",
		int(libvirt.DOMAIN_EVENT_STOPPED_DESTROYED):     "destroyed",
		int(libvirt.DOMAIN_EVENT_STOPPED_CRASHED):       "crashed",
		int(libvirt.DOMAIN_EVENT_STOPPED_MIGRATED):      "migrated",
		int(libvirt.DOMAIN_EVENT_STOPPED_SAVED):         "saved",
		int(libvirt.DOMAIN_EVENT_STOPPED_FAILED):        "failed",
		int(libvirt.DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT): "from-snapshot",
		int(libvirt.DOMAIN_EVENT_STOPPED_RECREATED):     "recreated",
	},
	libvirt.DOMAIN_EVENT_SHUTDOWN: {
		int(libvirt.DOMAIN_EVENT_SHUTDOWN_FINISHED): "finished",
		int(libvirt.DOMAIN_EVENT_SHUTDOWN_GUEST):    "guest",
		int(libvirt.DOMAIN_EVENT_SHUTDOWN_HOST):     "host",
	},
	libvirt.DOMAIN_EVENT_PMSUSPENDED: {
		int(libvirt.DOMAIN_EVENT_PMSUSPENDED_MEMORY): "memory",
		int(libvirt.DOMAIN_EVENT_PMSUSPENDED_DISK):   "disk",
	},
	libvirt.DOMAIN_EVENT_CRASHED: {
		int(libvirt.DOMAIN_EVENT_CRASHED_PANICKED):    "panicked",
		int(libvirt.DOMAIN_EVENT_CRASHED_CRASHLOADED): "crashloaded",
	},
}

var lifecycleKinds = map[libvirt.DomainEventType]EventKind{
	libvirt.DOMAIN_EVENT_DEFINED:     EventDefined,
	libvirt.DOMAIN_EVENT_UNDEFINED:   EventUndefined,
	libvirt.DOMAIN_EVENT_STARTED:     EventStarted,
	libvirt.DOMAIN_EVENT_SUSPENDED:   EventPaused,
	libvirt.DOMAIN_EVENT_RESUMED:     EventResumed,
	libvirt.DOMAIN_EVENT_STOPPED:     EventStopped,
	libvirt.DOMAIN_EVENT_SHUTDOWN:    EventShutdown,
	libvirt.DOMAIN_EVENT_PMSUSPENDED: EventPMSuspended,
	libvirt.DOMAIN_EVENT_CRASHED:     EventCrashed,
}

// lifecycleKind maps a libvirt lifecycle event to ours. A QEMU that died
// under its guest (stopped/failed, stopped/crashed) is a crash for Wingman,
// not an orderly stop.
func lifecycleKind(t libvirt.DomainEventType, detail int) (EventKind, string) {
	name, ok := lifecycleDetails[t][detail]
	if !ok {
		name = fmt.Sprintf("detail(%d)", detail)
	}
	kind, ok := lifecycleKinds[t]
	if !ok {
		// A newer libvirt may add event types; a resync makes the consumer
		// look at the domain rather than ignore the news.
		return EventResync, fmt.Sprintf("unknown libvirt event type %d", int(t))
	}
	if t == libvirt.DOMAIN_EVENT_STOPPED &&
		(detail == int(libvirt.DOMAIN_EVENT_STOPPED_FAILED) || detail == int(libvirt.DOMAIN_EVENT_STOPPED_CRASHED)) {
		kind = EventCrashed
	}
	return kind, name
}

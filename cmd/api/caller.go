package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"strconv"
	"syscall"
)

type callerKey struct{}

// noteCaller is the server's ConnContext: on the unix socket, the kernel
// says which user opened the connection (SO_PEERCRED), which no client
// can forge.
func noteCaller(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *syscall.Ucred
	cerr := raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cerr != nil || err != nil {
		return ctx
	}
	name := "uid " + strconv.Itoa(int(cred.Uid))
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		name = fmt.Sprintf("%s (uid %d)", u.Username, cred.Uid)
	}
	return context.WithValue(ctx, callerKey{}, name)
}

// Caller names who sent r, for the record of a dangerous operation: the
// unix user on the API socket, or the subject of the client certificate
// on the mutual-TLS listener; "" if neither is known.
func Caller(r *http.Request) string {
	if who, ok := r.Context().Value(callerKey{}).(string); ok {
		return "user " + who
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return "certificate " + r.TLS.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

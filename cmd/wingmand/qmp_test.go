package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/cmd/api"
)

// QMP diagnostics come only when asked for, from the host that runs the VM,
// and a failure there (test:/// has no QMP) is said in the answer next to
// the rest of the VM.
func TestQMPOnlyWhenAskedFromTheHostThatRunsTheVM(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatalf("protect: %v", err)
	}
	v, err := b.client.VM(ctx, "web1")
	if err != nil || v.QMP != nil {
		t.Fatalf("VM without ?qmp = %+v, %v: want no QMP part", v, err)
	}
	// Asked on kvm2, forwarded to kvm1, whose driver has no QMP.
	v, err = b.client.VMWithQMP(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "web1" || v.Owner != 1 || v.QMP == nil || v.QMP.Host != "kvm1" || v.QMP.Status != "" ||
		!strings.Contains(v.QMP.Error, "not supported") {
		t.Errorf("VMWithQMP(web1) via kvm2 = %+v, QMP %+v: want kvm1's answer that its driver has no QMP", v, v.QMP)
	}
	// A local domain that is off: QEMU is not asked.
	v, err = a.client.VMWithQMP(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	if v.QMP == nil || v.QMP.Host != "kvm1" || !strings.Contains(v.QMP.Error, "not running") {
		t.Errorf("VMWithQMP(db1) = QMP %+v, want not running on kvm1", v.QMP)
	}
	_, err = a.client.VMWithQMP(ctx, "nope")
	if !api.IsNotFound(err) {
		t.Errorf("VMWithQMP(nope) = %v, want 404", err)
	}
	rec := httptest.NewRecorder()
	apiServer{a.d}.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/vms/web1?qmp=maybe", nil))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "qmp=1") {
		t.Errorf("?qmp=maybe: %d %s, want 400 with a hint", rec.Code, rec.Body.String())
	}
}

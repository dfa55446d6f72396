package cluster

import (
	"strings"
	"testing"
)

func TestGuestXMLDiskKinds(t *testing.T) {
	for _, tc := range []struct {
		spec GuestSpec
		want string // "" : an error
	}{
		{GuestSpec{Name: "f", Type: "qemu", Disk: "/srv/f.img"}, "<disk type='file' device='disk'>"},
		{GuestSpec{Name: "f", Type: "qemu", Disk: "/srv/f.img"}, "<source file='/srv/f.img'/>"},
		{GuestSpec{Name: "b", Type: "qemu", Block: HostDiskDir + "/b.raw"}, "<source dev='/var/lib/libvirt/disks/b.raw'/>"},
		{GuestSpec{Name: "b", Type: "qemu", Block: "/dev/loop7"}, "<disk type='block' device='disk'>"},
		{GuestSpec{Name: "n", Type: "qemu", NBDSocket: "/run/n.sock"}, "<disk type='network' device='disk'>"},
		{GuestSpec{Name: "two", Type: "qemu", Disk: "/srv/f.img", Block: "/dev/loop7"}, ""},
		{GuestSpec{Name: "none", Type: "qemu"}, ""},
	} {
		x, err := tc.spec.XML()
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "set exactly one of Disk, Block and NBDSocket") {
				t.Errorf("%s: XML error %v, want one saying to set exactly one disk", tc.spec.Name, err)
			}
			continue
		}
		if err != nil || !strings.Contains(x, tc.want) {
			t.Errorf("%s: XML lacks %q (err %v):\n%s", tc.spec.Name, tc.want, err, x)
		}
	}
}

package realguest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultCacheDir is where Build keeps the Debian packages it unpacked and the images it made,
// between runs (make deps fills it). WINGMAN_GUEST_CACHE overrides it.
const DefaultCacheDir = "/var/cache/wingman-test/realguest"

// CacheDir is DefaultCacheDir, or $WINGMAN_GUEST_CACHE when set.
func CacheDir() string {
	if d := os.Getenv("WINGMAN_GUEST_CACHE"); d != "" {
		return d
	}
	return DefaultCacheDir
}

// Image is a bootable guest: a Debian cloud kernel and an initramfs whose init is guestinit.
type Image struct {
	Kernel        string // path of the kernel (vmlinuz)
	Initrd        string // path of the gzip'd newc initramfs
	KernelVersion string // e.g. 6.1.0-57-cloud-amd64
}

// kernelMeta is the metapackage whose versioned dependency is the guest's kernel.
const kernelMeta = "linux-image-cloud-amd64"

// Packages the guest is made of besides the kernel; liburing2 is a library of qemu-ga that a
// machine without QEMU lacks.
var userPackages = []string{"busybox-static", "qemu-guest-agent", "liburing2"}

// modules are the kernel modules the guest loads (with their dependencies): the disk, the NIC,
// the agent's virtio-serial port, pvpanic (ISA: mmio, PCI) and the ACPI power button.
var modules = []string{"virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "pvpanic_mmio", "pvpanic_pci", "button", "evdev"}

var buildMu sync.Mutex

// Build makes the guest image in cacheDir, or returns the one made before from the same
// packages and the same guestinit source. It downloads the packages with apt-get download (not
// installing them), unpacks them with dpkg-deb, builds guestinit (static, from this module, with
// the go command), and writes the initramfs. Safe to call from several processes at once (a lock
// file serialises them). logf, if not nil, reports each slow step.
func Build(ctx context.Context, cacheDir string, logf func(string, ...any)) (Image, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("guest image: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Image{}, fmt.Errorf("guest image: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return Image{}, fmt.Errorf("guest image: lock %s: %w", lock.Name(), err)
	}
	b := &builder{ctx: ctx, dir: cacheDir, logf: logf}
	img, err := b.build()
	if err != nil {
		return Image{}, fmt.Errorf("guest image in %s: %w", cacheDir, err)
	}
	return img, nil
}

type builder struct {
	ctx  context.Context
	dir  string
	logf func(string, ...any)
}

func (b *builder) build() (Image, error) {
	kpkg, err := b.kernelPackage()
	if err != nil {
		return Image{}, err
	}
	roots := map[string]string{}
	for _, p := range append([]string{kpkg}, userPackages...) {
		root, err := b.unpack(p)
		if err != nil {
			return Image{}, err
		}
		roots[p] = root
	}
	kver := strings.TrimPrefix(kpkg, "linux-image-")
	kernel := filepath.Join(roots[kpkg], "boot", "vmlinuz-"+kver)
	if _, err := os.Stat(kernel); err != nil {
		return Image{}, fmt.Errorf("kernel package %s has no boot/vmlinuz-%s: %w", kpkg, kver, err)
	}
	initBin, err := b.buildInit()
	if err != nil {
		return Image{}, err
	}
	files, err := b.initramfsFiles(roots, kpkg, kver, initBin)
	if err != nil {
		return Image{}, err
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %o %s %s\n", f.path, f.mode, f.link, f.src)
		if f.src != "" {
			data, err := os.ReadFile(f.src)
			if err != nil {
				return Image{}, err
			}
			h.Write(data)
		}
	}
	initrd := filepath.Join(b.dir, "initrd-"+hex.EncodeToString(h.Sum(nil))[:16]+".gz")
	if _, err := os.Stat(initrd); err == nil {
		return Image{Kernel: kernel, Initrd: initrd, KernelVersion: kver}, nil
	}
	if err := writeInitramfs(initrd, files); err != nil {
		return Image{}, err
	}
	b.logf("guest image: wrote %s", initrd)
	return Image{Kernel: kernel, Initrd: initrd, KernelVersion: kver}, nil
}

var dependsRE = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-\S+)`)

// kernelPackage resolves the cloud kernel metapackage to its versioned package. Without a
// package list (a fresh machine before apt-get update) it updates once; offline, it falls back
// to the newest kernel unpacked before.
func (b *builder) kernelPackage() (string, error) {
	for try := 0; try < 2; try++ {
		out, _ := exec.CommandContext(b.ctx, "apt-cache", "depends", kernelMeta).Output()
		if m := dependsRE.FindSubmatch(out); m != nil {
			return string(m[1]), nil
		}
		if try == 0 {
			b.logf("guest image: apt-get update (no package list for %s)", kernelMeta)
			_ = exec.CommandContext(b.ctx, "apt-get", "update", "-qq").Run()
		}
	}
	old, _ := filepath.Glob(filepath.Join(b.dir, "pkg", "linux-image-*", ".unpacked"))
	if len(old) > 0 {
		sort.Strings(old)
		return filepath.Base(filepath.Dir(old[len(old)-1])), nil
	}
	return "", fmt.Errorf("cannot resolve %s to a kernel package (apt-cache depends found none): run apt-get update, or make deps on a machine that reaches Debian's mirror", kernelMeta)
}

// unpack downloads pkg's .deb and unpacks it under pkg/<pkg>, once.
func (b *builder) unpack(pkg string) (string, error) {
	root := filepath.Join(b.dir, "pkg", pkg)
	stamp := filepath.Join(root, ".unpacked")
	if _, err := os.Stat(stamp); err == nil {
		return root, nil
	}
	debs := filepath.Join(b.dir, "deb")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", err
	}
	b.logf("guest image: apt-get download %s", pkg)
	// Each package in its own empty folder, so that the .deb is the only file there.
	tmp, err := os.MkdirTemp(debs, pkg+".")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(b.ctx, "apt-get", "download", "-q", pkg)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %w: %s", pkg, err, lastLines(out, 3))
	}
	got, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(got) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d .deb files, want 1", pkg, len(got))
	}
	_ = os.RemoveAll(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(b.ctx, "dpkg-deb", "-x", got[0], root).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %w: %s", filepath.Base(got[0]), err, lastLines(out, 3))
	}
	if err := os.WriteFile(stamp, []byte(filepath.Base(got[0])+"\n"), 0o644); err != nil {
		return "", err
	}
	return root, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// buildInit builds guestinit, static, from this module's source.
func (b *builder) buildInit() (string, error) {
	modDir, err := moduleDir(b.ctx)
	if err != nil {
		return "", err
	}
	out := filepath.Join(b.dir, "guestinit")
	cmd := exec.CommandContext(b.ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out+".new", "./test/realguest/guestinit")
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build guestinit: %w: %s", err, lastLines(o, 5))
	}
	if err := os.Rename(out+".new", out); err != nil {
		return "", err
	}
	return out, nil
}

// moduleDir is the root of this Go module (the source guestinit is built from).
func moduleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("find the wingman module (go env GOMOD: %q, %v): run from inside the source tree", mod, err)
	}
	return filepath.Dir(mod), nil
}

// file is one entry of the initramfs.
type file struct {
	path string      // in the guest, absolute
	mode os.FileMode // type and permission bits
	src  string      // regular file: its content on this machine
	link string      // symlink: its target
}

func (b *builder) initramfsFiles(roots map[string]string, kpkg, kver, initBin string) ([]file, error) {
	var fs []file
	dir := func(p string) { fs = append(fs, file{path: p, mode: os.ModeDir | 0o755}) }
	for _, d := range []string{"/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/lib", "/lib/modules", "/lib64",
		"/lib/x86_64-linux-gnu", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/proc", "/sys", "/dev", "/run", "/tmp", "/data", "/var", "/etc"} {
		dir(d)
	}
	fs = append(fs,
		file{path: "/init", mode: 0o755, src: initBin},
		file{path: "/sbin/shutdown", mode: os.ModeSymlink | 0o777, link: "/init"},
		file{path: "/var/run", mode: os.ModeSymlink | 0o777, link: "/run"},
		file{path: "/bin/busybox", mode: 0o755, src: filepath.Join(roots["busybox-static"], "bin", "busybox")},
	)
	// qemu-ga and the shared libraries it needs, as ldd resolves them (from the unpacked
	// packages first, then this machine: Debian 12's, like the guest's kernel).
	ga := filepath.Join(roots["qemu-guest-agent"], "usr", "sbin", "qemu-ga")
	fs = append(fs, file{path: "/usr/sbin/qemu-ga", mode: 0o755, src: ga})
	libs, err := sharedLibs(b.ctx, ga, filepath.Join(roots["liburing2"], "usr", "lib", "x86_64-linux-gnu"))
	if err != nil {
		return nil, err
	}
	for _, l := range libs {
		fs = append(fs, file{path: l.guestPath, mode: 0o755, src: l.src})
	}
	// Kernel modules, dependencies first.
	modRoot := filepath.Join(roots[kpkg], "lib", "modules", kver)
	order, paths, err := moduleOrder(modRoot, modules)
	if err != nil {
		return nil, err
	}
	for _, m := range order {
		fs = append(fs, file{path: "/lib/modules/" + m + ".ko", mode: 0o644, src: paths[m]})
	}
	orderFile := filepath.Join(b.dir, "modules.order")
	var lines []string
	for _, m := range order {
		lines = append(lines, m+".ko")
	}
	if err := os.WriteFile(orderFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	fs = append(fs, file{path: "/lib/modules/order", mode: 0o644, src: orderFile})
	return fs, nil
}

type lib struct{ guestPath, src string }

var lddRE = regexp.MustCompile(`^\s*(\S+)(?: => (\S+))? \(0x`)

// sharedLibs lists the libraries ldd resolves for bin, with extra searched first. A library it
// cannot find is an error that names it.
func sharedLibs(ctx context.Context, bin, extra string) ([]lib, error) {
	cmd := exec.CommandContext(ctx, "ldd", bin)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+extra)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []lib
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("qemu-ga needs %s, which neither the unpacked packages nor this machine have: install it (apt-get install) and run make deps again", strings.TrimSpace(line))
		}
		m := lddRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, path := m[1], m[2]
		if path == "" {
			if !strings.HasPrefix(name, "/") {
				continue // linux-vdso.so.1
			}
			path = name // the dynamic loader
		}
		guest := path // the loader, at the path the binary names
		if path != name {
			guest = "/lib/x86_64-linux-gnu/" + filepath.Base(name)
		}
		src, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, err
		}
		libs = append(libs, lib{guestPath: guest, src: src})
	}
	return libs, nil
}

// moduleOrder finds each wanted module under root and returns them with their dependencies
// (read from each module's .modinfo "depends=" entry), dependencies first.
func moduleOrder(root string, wanted []string) ([]string, map[string]string, error) {
	paths := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			paths[strings.ReplaceAll(strings.TrimSuffix(d.Name(), ".ko"), "-", "_")] = p
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read kernel modules: %w", err)
	}
	var order []string
	seen := map[string]bool{}
	var visit func(m string, stack []string) error
	visit = func(m string, stack []string) error {
		if seen[m] {
			return nil
		}
		if slices.Contains(stack, m) {
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(stack, m), " -> "))
		}
		p, ok := paths[m]
		if !ok {
			return fmt.Errorf("kernel module %s is not in %s (is it built in, or renamed, in this kernel?)", m, root)
		}
		deps, err := moduleDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(stack, m)); err != nil {
				return err
			}
		}
		seen[m] = true
		order = append(order, m)
		return nil
	}
	for _, m := range wanted {
		if err := visit(m, nil); err != nil {
			return nil, nil, err
		}
	}
	return order, paths, nil
}

func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("module %s has no .modinfo", path)
	}
	data, err := s.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				deps = append(deps, strings.ReplaceAll(d, "-", "_"))
			}
			return deps, nil
		}
	}
	return nil, nil
}

// writeInitramfs writes files as a gzip'd newc cpio archive at path (atomically).
func writeInitramfs(path string, files []file) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	w := &cpioWriter{w: zw}
	for _, fl := range files {
		var data []byte
		switch {
		case fl.mode&os.ModeSymlink != 0:
			data = []byte(fl.link)
		case fl.src != "":
			if data, err = os.ReadFile(fl.src); err != nil {
				f.Close()
				return err
			}
		}
		if err := w.add(fl.path, fl.mode, data); err != nil {
			f.Close()
			return err
		}
	}
	err = errors.Join(w.close(), zw.Close(), f.Close())
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write initramfs: %w", err)
	}
	return os.Rename(tmp, path)
}

// cpioWriter writes the "newc" cpio format the kernel unpacks as an initramfs.
type cpioWriter struct {
	w   io.Writer
	ino int
	err error
}

func (c *cpioWriter) add(name string, mode os.FileMode, data []byte) error {
	c.ino++
	m := uint32(mode.Perm())
	switch {
	case mode.IsDir():
		m |= 0o040000
	case mode&os.ModeSymlink != 0:
		m |= 0o120000
	default:
		m |= 0o100000
	}
	nlink := 1
	if mode.IsDir() {
		nlink = 2
	}
	return c.entry(strings.TrimPrefix(name, "/"), m, nlink, data)
}

func (c *cpioWriter) entry(name string, mode uint32, nlink int, data []byte) error {
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	buf := append([]byte(hdr), name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, data...)
	buf = pad4(buf)
	_, err := c.w.Write(buf)
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (c *cpioWriter) close() error { return c.entry("TRAILER!!!", 0, 1, nil) }

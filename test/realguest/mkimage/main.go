// Command mkimage builds the test cluster's real guest image (package realguest) into its cache,
// so that tests and make demo find it ready; make deps runs it. It prints the kernel and
// initramfs paths.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/wingmanha/wingman/test/realguest"
)

func main() {
	dir := flag.String("cache", realguest.CacheDir(), "cache directory")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	img, err := realguest.Build(ctx, *dir, log.Printf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("real guest: kernel %s (%s), initramfs %s, in %.1fs\n", img.Kernel, img.KernelVersion, img.Initrd, time.Since(start).Seconds())
}

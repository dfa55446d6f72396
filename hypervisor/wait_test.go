package hypervisor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestWaitUntilWakesOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &changeSignal{}
		var mu sync.Mutex
		off := false
		checks := 0
		start := time.Now()
		go func() {
			time.Sleep(3 * time.Second) // fake time: the guest powers off
			mu.Lock()
			off = true
			mu.Unlock()
			f.signal()
		}()
		err := waitUntil(t.Context(), f.changes, time.Hour, func() (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			checks++
			return off, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Errorf("waited %v, want the 3s until the change, not the 1h poll", took)
		}
		if checks != 2 {
			t.Errorf("checked %d times, want 2 (at start and on the change)", checks)
		}
	})
}

func TestWaitUntilPollsWithoutEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &changeSignal{}
		checks := 0
		start := time.Now()
		err := waitUntil(t.Context(), f.changes, time.Second, func() (bool, error) {
			checks++
			return checks == 4, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Errorf("waited %v, want 3 polls of 1s", took)
		}
	})
}

func TestWaitUntilDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &changeSignal{}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := waitUntil(ctx, f.changes, time.Second, func() (bool, error) { return false, nil })
		wantErrIs(t, err, ErrTimeout)
		wantErrIs(t, err, context.DeadlineExceeded)
		if took := time.Since(start); took != 10*time.Second {
			t.Errorf("gave up after %v, want the 10s deadline", took)
		}
	})
}

func TestWaitUntilCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &changeSignal{}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		err := waitUntil(ctx, f.changes, time.Hour, func() (bool, error) { return false, nil })
		wantErrIs(t, err, context.Canceled)
		if errors.Is(err, ErrTimeout) {
			t.Errorf("a canceled wait reported %v: only a passed deadline is a timeout", err)
		}
	})
}

func TestWaitUntilConditionError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		err := waitUntil(t.Context(), (&changeSignal{}).changes, time.Second, func() (bool, error) { return false, boom })
		wantErrIs(t, err, boom)
	})
}

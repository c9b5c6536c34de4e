//go:build faults

package faults_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// tinyWatermark raises the broker's memory alarm at once: no node uses less
// than a ten-millionth of the machine's memory.
const tinyWatermark = "0.0000001"

// watermarkMarker holds the watermark a run found before it lowered it, so
// that the next run restores it when this one was killed before it could.
var watermarkMarker = filepath.Join(os.TempDir(), "hypha-faults-watermark")

func init() {
	// A run killed while the memory alarm was on (a test timeout, ^C) left
	// the broker blocking every publisher: restore the watermark it found.
	if w, err := restoreSavedWatermark(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: restoring the memory watermark %q an earlier run left lowered: %v\n", w, err)
	} else if w != "" {
		fmt.Fprintf(os.Stderr, "faults: restored the memory watermark %s an earlier run left lowered\n", w)
	}
}

// restoreSavedWatermark sets the watermark saved in watermarkMarker, if any,
// and removes the marker. It returns the watermark it restored.
func restoreSavedWatermark() (string, error) {
	raw, err := os.ReadFile(watermarkMarker)
	if err != nil {
		return "", nil
	}
	w := strings.TrimSpace(string(raw))
	if err := setWatermark(w); err != nil {
		return w, err
	}
	os.Remove(watermarkMarker)
	return w, nil
}

var (
	relativeWatermark = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)
	absoluteWatermark = regexp.MustCompile(`^\{absolute,\s*"?([0-9A-Za-z]+)"?\}$`)
)

// readWatermark returns the broker's memory high watermark as
// vm_memory_monitor prints it: 0.4 (a fraction of the machine's memory) or
// {absolute,1073741824}.
func readWatermark() (string, error) {
	out, err := rabbitmqctl(30*time.Second, "eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
	if err != nil {
		return "", fmt.Errorf("reading the memory watermark: %v\n%s", err, out)
	}
	w := strings.TrimSpace(out)
	if _, err := watermarkArgs(w); err != nil {
		return "", err
	}
	return w, nil
}

// watermarkArgs are the rabbitmqctl arguments that set the watermark w,
// as readWatermark returns it.
func watermarkArgs(w string) ([]string, error) {
	w = strings.TrimSpace(w)
	if relativeWatermark.MatchString(w) {
		return []string{"set_vm_memory_high_watermark", w}, nil
	}
	if m := absoluteWatermark.FindStringSubmatch(w); m != nil {
		return []string{"set_vm_memory_high_watermark", "absolute", m[1]}, nil
	}
	return nil, fmt.Errorf("unexpected memory watermark %q", w)
}

func setWatermark(w string) error {
	args, err := watermarkArgs(w)
	if err != nil {
		return err
	}
	if out, err := rabbitmqctl(30*time.Second, args...); err != nil {
		return fmt.Errorf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// memoryAlarm reports whether the broker's memory alarm is on.
func memoryAlarm() (bool, error) {
	out, err := rabbitmqctl(30*time.Second, "eval", "rabbit_alarm:get_alarms().")
	if err != nil {
		return false, fmt.Errorf("reading the broker's alarms: %v\n%s", err, out)
	}
	return strings.Contains(out, "resource_limit,memory"), nil
}

// awaitMemoryAlarm polls until the memory alarm is on (want) or off, for at
// most timeout.
func awaitMemoryAlarm(want bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		on, err := memoryAlarm()
		if err == nil && on == want {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("memory alarm still %v after %s", on, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// raiseMemoryAlarm lowers the broker's memory watermark until the memory
// alarm is on, which blocks every connection that publishes. It returns the
// function that restores the watermark found and waits for the alarm to
// clear; that also runs, once, in t.Cleanup, and the next run of the tests
// restores the watermark when this one is killed first.
func raiseMemoryAlarm(t *testing.T) (restore func()) {
	t.Helper()
	if on, err := memoryAlarm(); err != nil {
		t.Fatal(err)
	} else if on {
		t.Fatal("the broker's memory alarm is already on; the test needs a broker without alarms")
	}
	orig, err := readWatermark()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(watermarkMarker, []byte(orig), 0o600); err != nil {
		t.Fatalf("saving the memory watermark: %v", err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := setWatermark(orig); err != nil {
				t.Errorf("restoring the memory watermark %s: %v", orig, err)
				return
			}
			os.Remove(watermarkMarker)
			if err := awaitMemoryAlarm(false, 30*time.Second); err != nil {
				t.Errorf("after restoring the memory watermark %s: %v", orig, err)
			}
		})
	}
	t.Cleanup(restore)
	t.Logf("memory watermark was %s; lowering it to %s", orig, tinyWatermark)
	if err := setWatermark(tinyWatermark); err != nil {
		restore()
		t.Fatal(err)
	}
	if err := awaitMemoryAlarm(true, 30*time.Second); err != nil {
		restore()
		t.Fatal(err)
	}
	return restore
}

package deadline

import (
	"context"
	"testing"
	"time"
)

func TestWithin(t *testing.T) {
	left := func(ctx context.Context) time.Duration {
		dl, ok := ctx.Deadline()
		if !ok {
			return -1
		}
		return time.Until(dl)
	}
	bg := context.Background()
	ctx, cancel := Within(bg, 2*time.Second)
	defer cancel()
	if l := left(ctx); l <= time.Second || l > 2*time.Second {
		t.Errorf("no caller deadline: %s left, want the 2 s limit", l)
	}
	ctx, cancel = Within(bg, 0)
	defer cancel()
	if left(ctx) != -1 {
		t.Error("no limit and no caller deadline made a deadline")
	}
	caller, cancelCaller := context.WithTimeout(bg, 500*time.Millisecond)
	defer cancelCaller()
	ctx, cancel = Within(caller, 2*time.Second)
	defer cancel()
	if l := left(ctx); l > 500*time.Millisecond-Margin || l < 300*time.Millisecond {
		t.Errorf("caller deadline 500 ms: %s left, want it less the margin", l)
	}
	short, cancelShort := context.WithTimeout(bg, 10*time.Millisecond)
	defer cancelShort()
	ctx, cancel = Within(short, time.Second)
	defer cancel()
	if l := left(ctx); l > time.Millisecond {
		t.Errorf("caller deadline inside the margin: %s left, want about 1 ms", l)
	}
}

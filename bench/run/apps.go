package main

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// paired compares two rows directly, without the floor: the two loads
// alternate round by round (in ABBA order), and each round's ratio
// compares runs made seconds apart, so this machine's drift (±10 % between
// single runs, ±25 % for the floor within one full run) cancels out; the
// median of the ratios is b's cost against a. Used for the session on 1
// app of 50 against one app (README "Many apps") and for the session with
// the identity assertion against without (issue 33).
func paired(title, aName, bName string, a, b *scenario, concs []conc, rounds int, d time.Duration, pin bool, work string) error {
	fmt.Printf("\n%s, alternating, %v × %d rounds\n\n", title, d, rounds)
	fmt.Printf("| c | %s req/s | %s req/s | paired ratio (median) | range |\n", aName, bName)
	fmt.Println("|---:|---:|---:|---:|---|")
	for _, c := range concs {
		var as, bs []result
		var ratios []float64
		budget := time.Duration(rounds) * 2 * (d + 2*time.Second)
		if err := errors.Join(a.fresh(budget), b.fresh(budget)); err != nil {
			return err
		}
		for i := range rounds {
			// ABBA: which goes first alternates, so an order effect
			// cancels too.
			first, second := a, b
			if i%2 == 1 {
				first, second = b, a
			}
			ra, err := load(*first, c, d, pin, work)
			if err != nil {
				return err
			}
			rb, err := load(*second, c, d, pin, work)
			if err != nil {
				return err
			}
			r1, r2 := ra, rb
			if i%2 == 1 {
				r1, r2 = rb, ra
			}
			as, bs = append(as, r1), append(bs, r2)
			ratios = append(ratios, r2.rps/r1.rps)
		}
		if err := errors.Join(a.verify(), b.verify()); err != nil {
			return fmt.Errorf("after the paired load at c=%s (a row measured another answer): %w", c, err)
		}
		slices.Sort(ratios)
		fmt.Printf("| %s | %.0f | %.0f | %.3f | %.3f–%.3f |\n", c, median(as).rps, median(bs).rps, ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	}
	return nil
}

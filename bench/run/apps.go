package main

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// appsOverhead compares the same session on a server with one app and on
// one app of a server with 50 (README "Many apps"): the two loads alternate
// round by round (in ABBA order), and each round's ratio compares runs made seconds apart,
// so this machine's drift (±10 % between single runs) cancels out; the
// median of the ratios is the overhead.
func appsOverhead(single, many *scenario, concs []conc, rounds int, d time.Duration, pin bool, work string) error {
	fmt.Printf("\nApps: the session on 1 app of 50 (exact host) against a server with one app, alternating, %v × %d rounds\n\n", d, rounds)
	fmt.Println("| c | 1 app req/s | 1 of 50 apps req/s | paired ratio (median) | range |")
	fmt.Println("|---:|---:|---:|---:|---|")
	for _, c := range concs {
		var ones, manys []result
		var ratios []float64
		budget := time.Duration(rounds) * 2 * (d + 2*time.Second)
		if err := errors.Join(single.fresh(budget), many.fresh(budget)); err != nil {
			return err
		}
		for i := range rounds {
			// ABBA: which goes first alternates, so an order effect
			// cancels too.
			first, second := single, many
			if i%2 == 1 {
				first, second = many, single
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
			ones, manys = append(ones, r1), append(manys, r2)
			ratios = append(ratios, r2.rps/r1.rps)
		}
		if err := errors.Join(single.verify(), many.verify()); err != nil {
			return fmt.Errorf("after the apps load at c=%s (a row measured another answer): %w", c, err)
		}
		slices.Sort(ratios)
		fmt.Printf("| %s | %.0f | %.0f | %.3f | %.3f–%.3f |\n", c, median(ones).rps, median(manys).rps, ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	}
	return nil
}

package policy

import "testing"

// FuzzParsePrefixes checks that any -trusted-proxies value either parses
// into valid prefixes or fails with an error, never panics.
func FuzzParsePrefixes(f *testing.F) {
	for _, seed := range []string{"", "10.0.0.0/8", "10.0.0.1", "::1, 2001:db8::/32", "10.0.0.1/8", ",", "a/b/c", "::ffff:1.2.3.4/128"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, list string) {
		ps, err := ParsePrefixes(list)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("%q: prefix %v accepted", list, p)
			}
		}
	})
}

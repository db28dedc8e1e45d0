package typo

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"key", "key", 0},
		{"", "key", 3},
		{"key", "", 3},
		{"kye", "key", 1},   // a swap of neighbours is one step
		{"TREM", "TERM", 1}, // likewise
		{"HUPP", "HUP", 1},  // a deletion
		{"HP", "HUP", 1},    // an insertion
		{"SIGHIP", "SIGHUP", 1},
		{"abc", "cba", 2}, // not neighbours: two substitutions
		{"kitten", "sitting", 3},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Distance(tc.b, tc.a); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetric)", tc.b, tc.a, got, tc.want)
		}
	}
}

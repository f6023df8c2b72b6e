package city

import "testing"

func TestNormalizePlate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"粤B12345", "粤B12345"},
		{"粤b 12345", "粤B12345"},
		{"粤B·12345", "粤B12345"},
		{" 粤B-12345 ", "粤B12345"},
		{"粤B.12345", "粤B12345"},
		{"粤Ｂ１２３４５", "粤B12345"},
		{"粤Ｂ－１２３４５", "粤B12345"},
		{"粤ｂ・d1234", "粤BD1234"},
		{"粤\u3000B\t1234５", "粤B12345"},
		{"粤B•12345", "粤B12345"},
		{"粤B—12345", "粤B12345"},
		{"AB12345", "AB12345"},
		{"ab12345", "AB12345"},
		{"京A·F0236", "京AF0236"},
		{"粤BD12345", "粤BD12345"},
		{"", ""},
		{" ·- ", ""},
	}
	for _, tc := range cases {
		if got := NormalizePlate(tc.in); got != tc.want {
			t.Errorf("NormalizePlate(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := NormalizePlate(tc.want); again != tc.want {
			t.Errorf("NormalizePlate is not idempotent on %q: %q", tc.want, again)
		}
	}
}

func FuzzNormalizePlate(f *testing.F) {
	for _, s := range []string{"粤b 12345", "粤Ｂ－１２３４５", "粤B·12345", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizePlate(s)
		if NormalizePlate(n) != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, NormalizePlate(n))
		}
	})
}

func BenchmarkNormalizePlate(b *testing.B) {
	for _, s := range []string{"粤B12345", "粤b·12345"} {
		b.Run(s, func(b *testing.B) {
			for b.Loop() {
				NormalizePlate(s)
			}
		})
	}
}

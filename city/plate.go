package city

import (
	"strings"
	"unicode"
)

// NormalizePlate returns the canonical form of a licence plate as typed or captured: spaces
// and the separators '-', '·', '.', '•', '・' (and their full-width forms) removed,
// full-width ASCII turned half-width, latin letters upper-cased; the Chinese province
// character is kept. "粤b 12345", "粤B·12345" and "粤Ｂ－１２３４５" all become "粤B12345".
func NormalizePlate(s string) string {
	if plateIsNormal(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r, keep := plateRune(r); keep {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// plateRune maps one rune of a plate to its normal form, or drops it.
func plateRune(r rune) (rune, bool) {
	if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
		r -= 0xFEE0
	}
	switch {
	case unicode.IsSpace(r), unicode.IsControl(r), r == unicode.ReplacementChar:
		return 0, false
	case r == '-', r == '.', r == '·', r == '•', r == '・', r == '‧', r == '∙', r == '⋅',
		r == '‐', r == '‑', r == '‒', r == '–', r == '—', r == '。':
		return 0, false
	case r >= 'a' && r <= 'z':
		return r - ('a' - 'A'), true
	}
	return r, true
}

// plateIsNormal reports whether NormalizePlate would return s unchanged.
func plateIsNormal(s string) bool {
	for _, r := range s {
		if m, keep := plateRune(r); !keep || m != r {
			return false
		}
	}
	return true
}

package record

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The wire contract is flat JSON objects. objectScanner walks one object's members without
// building a map or reflecting, so decoding a record allocates only the strings it keeps.
// Nested values of unknown members are skipped; duplicate members: the last one wins.

type valueKind uint8

const (
	kindString valueKind = iota + 1
	kindNumber
	kindBool
	kindNull
	kindNested // object or array: skipped
)

func (k valueKind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	case kindBool:
		return "boolean"
	case kindNull:
		return "null"
	default:
		return "object or array"
	}
}

type jsonValue struct {
	kind valueKind
	raw  []byte // the number's text
	str  []byte // the unescaped string; aliases the input or the scanner's scratch buffer
	b    bool
}

type objectScanner struct {
	in      []byte
	i       int
	scratch []byte    // unescaped keys and strings; reused across records
	v       jsonValue // the member being read, handed to each's callback; reused
}

func (s *objectScanner) reset(in []byte) {
	s.in = in
	s.i = 0
	s.scratch = s.scratch[:0]
}

func (s *objectScanner) errorf(what string) error {
	return &RejectError{Reason: ReasonMalformed, Detail: what + " at byte " + strconv.Itoa(s.i)}
}

func (s *objectScanner) skipSpace() {
	for s.i < len(s.in) {
		switch s.in[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// each calls fn for every member of the top-level object. fn returns an error to stop.
func (s *objectScanner) each(fn func(key []byte, v *jsonValue) error) error {
	s.skipSpace()
	if s.i >= len(s.in) || s.in[s.i] != '{' {
		return s.errorf("expected a JSON object")
	}
	s.i++
	s.skipSpace()
	if s.i < len(s.in) && s.in[s.i] == '}' {
		s.i++
		return s.end()
	}
	v := &s.v
	for {
		s.skipSpace()
		s.scratch = s.scratch[:0]
		key, err := s.readString()
		if err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.in) || s.in[s.i] != ':' {
			return s.errorf("expected ':' after member name")
		}
		s.i++
		s.skipSpace()
		if err := s.readValue(v, 0); err != nil {
			return err
		}
		if err := fn(key, v); err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.in) {
			return s.errorf("unexpected end of input, expected ',' or '}'")
		}
		switch s.in[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return s.end()
		default:
			return s.errorf("expected ',' or '}'")
		}
	}
}

func (s *objectScanner) end() error {
	s.skipSpace()
	if s.i != len(s.in) {
		return s.errorf("unexpected data after the JSON object")
	}
	return nil
}

const maxNesting = 32

func (s *objectScanner) readValue(v *jsonValue, depth int) error {
	if s.i >= len(s.in) {
		return s.errorf("unexpected end of input, expected a value")
	}
	*v = jsonValue{}
	switch c := s.in[s.i]; {
	case c == '"':
		str, err := s.readString()
		if err != nil {
			return err
		}
		v.kind, v.str = kindString, str
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.i
		if err := s.readNumber(); err != nil {
			return err
		}
		v.kind, v.raw = kindNumber, s.in[start:s.i]
	case c == 't':
		if err := s.literal("true"); err != nil {
			return err
		}
		v.kind, v.b = kindBool, true
	case c == 'f':
		if err := s.literal("false"); err != nil {
			return err
		}
		v.kind = kindBool
	case c == 'n':
		if err := s.literal("null"); err != nil {
			return err
		}
		v.kind = kindNull
	case c == '{' || c == '[':
		if depth >= maxNesting {
			return s.errorf("nesting deeper than 32 levels")
		}
		if err := s.skipNested(depth); err != nil {
			return err
		}
		v.kind = kindNested
	default:
		return s.errorf("invalid character " + strconv.QuoteRune(rune(c)) + " where a value was expected")
	}
	return nil
}

func (s *objectScanner) skipNested(depth int) error {
	open := s.in[s.i]
	closing := byte('}')
	if open == '[' {
		closing = ']'
	}
	s.i++
	s.skipSpace()
	if s.i < len(s.in) && s.in[s.i] == closing {
		s.i++
		return nil
	}
	var v jsonValue
	mark := len(s.scratch)
	for {
		s.skipSpace()
		if open == '{' {
			if _, err := s.readString(); err != nil {
				return err
			}
			s.skipSpace()
			if s.i >= len(s.in) || s.in[s.i] != ':' {
				return s.errorf("expected ':' after member name")
			}
			s.i++
			s.skipSpace()
		}
		if err := s.readValue(&v, depth+1); err != nil {
			return err
		}
		s.scratch = s.scratch[:mark]
		s.skipSpace()
		if s.i >= len(s.in) {
			return s.errorf("unexpected end of input in a nested value")
		}
		switch s.in[s.i] {
		case ',':
			s.i++
		case closing:
			s.i++
			return nil
		default:
			return s.errorf("expected ',' or '" + string(closing) + "'")
		}
	}
}

func (s *objectScanner) literal(word string) error {
	if len(s.in)-s.i < len(word) || string(s.in[s.i:s.i+len(word)]) != word {
		return s.errorf("invalid literal, expected " + word)
	}
	s.i += len(word)
	return nil
}

func (s *objectScanner) readNumber() error {
	in, i := s.in, s.i
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && in[i] >= '1' && in[i] <= '9':
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return s.errorf("invalid number")
	}
	if i < len(in) && in[i] == '.' {
		i++
		d := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return s.errorf("invalid number: no digits after '.'")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		d := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return s.errorf("invalid number: no digits in exponent")
		}
	}
	s.i = i
	return nil
}

// readString reads a JSON string at s.i. Strings without escapes alias the input; others are
// unescaped into the scratch buffer. Invalid UTF-8 is an error, not silently replaced.
func (s *objectScanner) readString() ([]byte, error) {
	if s.i >= len(s.in) || s.in[s.i] != '"' {
		return nil, s.errorf("expected a string")
	}
	s.i++
	start := s.i
	var high byte // the bits of every byte or'ed: below 0x80, the string is ASCII, so valid UTF-8
	for s.i < len(s.in) {
		c := s.in[s.i]
		high |= c
		switch {
		case c == '"':
			out := s.in[start:s.i]
			s.i++
			if high >= utf8.RuneSelf && !utf8.Valid(out) {
				return nil, &RejectError{Reason: ReasonInvalidID, Detail: "string ending at byte " + strconv.Itoa(s.i) + " is not valid UTF-8"}
			}
			return out, nil
		case c == '\\':
			return s.readEscaped(start)
		case c < 0x20:
			return nil, s.errorf("control character in string")
		}
		s.i++
	}
	return nil, s.errorf("unterminated string")
}

func (s *objectScanner) readEscaped(start int) ([]byte, error) {
	mark := len(s.scratch)
	s.scratch = append(s.scratch, s.in[start:s.i]...)
	for s.i < len(s.in) {
		c := s.in[s.i]
		switch {
		case c == '"':
			s.i++
			out := s.scratch[mark:]
			if !utf8.Valid(out) {
				return nil, &RejectError{Reason: ReasonInvalidID, Detail: "string ending at byte " + strconv.Itoa(s.i) + " is not valid UTF-8"}
			}
			return out, nil
		case c < 0x20:
			return nil, s.errorf("control character in string")
		case c != '\\':
			s.scratch = append(s.scratch, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.in) {
			return nil, s.errorf("unterminated escape")
		}
		e := s.in[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			s.scratch = append(s.scratch, e)
		case 'b':
			s.scratch = append(s.scratch, '\b')
		case 'f':
			s.scratch = append(s.scratch, '\f')
		case 'n':
			s.scratch = append(s.scratch, '\n')
		case 'r':
			s.scratch = append(s.scratch, '\r')
		case 't':
			s.scratch = append(s.scratch, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, s.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.i+1 < len(s.in) && s.in[s.i] == '\\' && s.in[s.i+1] == 'u' {
					s.i += 2
					var ok2 bool
					if r2, ok2 = s.hex4(); !ok2 {
						return nil, s.errorf("invalid \\u escape")
					}
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return nil, &RejectError{Reason: ReasonInvalidID, Detail: "unpaired UTF-16 surrogate in string at byte " + strconv.Itoa(s.i)}
				}
			}
			s.scratch = utf8.AppendRune(s.scratch, r)
		default:
			return nil, s.errorf("invalid escape character " + strconv.QuoteRune(rune(e)))
		}
	}
	return nil, s.errorf("unterminated string")
}

func (s *objectScanner) hex4() (rune, bool) {
	if len(s.in)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.in[s.i : s.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

package store

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SearchWords returns the words of s as the search of item listings
// ([Tx.Items] with a Search) cuts and folds them: runs of letters
// (Unicode L*), decimal digits (Nd) and marks (M*), each folded by case
// and diacritics (see below); words that fold to nothing (marks alone) are
// left out. Every other character separates words: spaces, punctuation,
// symbols, numbers that are not decimal digits (², ½, Ⅻ) and private-use
// characters: "x²y" is the words "x" and "y".
//
// Every store indexes and searches the words this function returns, and
// nothing else: they are the one definition of a word and of its folding,
// so that all stores find the same items. A change here changes what the
// stores have indexed: it needs a migration, in every store, that indexes
// the existing items again.
//
// A word is folded letter by letter: lower-cased through its upper case,
// with Go's Unicode tables (so that ς and σ, ſ and s, µ and μ, Ꭰ and ꭰ
// fold together), but for the Turkish dotless ı, which stays apart from i;
// the Latin letters with diacritics mapped to their base letter (é → e, ñ →
// n: the letters of Latin-1, Latin Extended-A and B and Latin Extended
// Additional that SQLite's unicode61 tokenizer maps with remove_diacritics
// 2, as the SQLite store once folded them); and the nonspacing marks (Mn:
// the combining accents of a decomposed "é", Arabic and Hebrew vowel
// points, the Devanagari virama) dropped. Letters with a stroke or a
// ligature (ø, ł, đ, æ, ß) are not letters with diacritics: they stay.
// There is no other normalisation: Go's standard library has none.
//
// O(len(s)); safe for concurrent use.
func SearchWords(s string) []string {
	text := AppendSearchText(nil, s)
	if len(text) == 0 {
		return nil
	}
	return strings.Split(string(text), " ")
}

// SearchQuery returns what a search of item listings asks for: words, each
// a word the item must have, and prefix, a word the item must have one
// beginning with ("" when it asks for none), as [Tx.Items] takes a Search:
// every word of it but the last is a word of the item, and the last begins
// one. The words are [SearchWords]'s, each once; the last is left out of
// words when it is only the prefix, and the prefix is dropped when one of
// words begins with it (an item with that word begins one with it). So a
// search of a word repeated 127 times is a query of one word, and finds
// what the search finds: "ada ada" is the word "ada" (not the prefix
// "ada", which "adam" begins), "ada a" is the word "ada" too, "a ada" the
// word "a" and the prefix "ada". Both nil and "" when s has no word.
func SearchQuery(s string) (words []string, prefix string) {
	all := SearchWords(s)
	if len(all) == 0 {
		return nil, ""
	}
	prefix = all[len(all)-1]
	for _, w := range all[:len(all)-1] {
		if !slices.Contains(words, w) {
			words = append(words, w)
		}
		if strings.HasPrefix(w, prefix) {
			prefix = ""
		}
	}
	return words, prefix
}

// AppendSearchText appends the words of s, as [SearchWords] returns them,
// to dst, each after a space if dst is not empty: the words of several
// fields make one text, without a slice or a string for each word.
// O(len(s)); safe for concurrent use.
func AppendSearchText(dst []byte, s string) []byte {
	started := false // the current word has a rune in dst
	for _, r := range s {
		if r < utf8.RuneSelf { // ASCII: no marks, nothing to fold but case
			switch {
			case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			case 'A' <= r && r <= 'Z':
				r += 'a' - 'A'
			default:
				started = false
				continue
			}
		} else {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
				started = false
				continue
			}
			if unicode.Is(unicode.Mn, r) {
				continue // dropped, within the word
			}
			r = foldRune(r)
		}
		if !started {
			if len(dst) > 0 {
				dst = append(dst, ' ')
			}
			started = true
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// foldRune returns a letter, digit or spacing mark with case and
// diacritics aside (see [SearchWords]).
func foldRune(r rune) rune {
	if r != 'ı' { // the Turkish dotless i stays apart from i
		r = unicode.ToLower(unicode.ToUpper(r))
	}
	if base, ok := latinBase[r]; ok {
		return base
	}
	return r
}

// latinBase maps each lower-case Latin letter with diacritics to its base
// letter: the letters of Latin-1, Latin Extended-A and B and Latin Extended
// Additional that SQLite's unicode61 tokenizer folds with remove_diacritics
// 2 (TestSearchFold_Unicode61 checks the two agree), so that the words of
// Latin text are those the SQLite store indexed before it folded in Go.
var latinBase = func() map[rune]rune {
	groups := []string{
		"aàáâãäåāăąǎǟǻȁȃȧḁạảấầẩẫậắằẳẵặ",
		"bḃḅḇ",
		"cçćĉċčḉ",
		"dďḋḍḏḑḓ",
		"eèéêëēĕėęěȅȇȩḕḗḙḛḝẹẻẽếềểễệ",
		"fḟ",
		"gĝğġģǧǵḡ",
		"hĥȟḣḥḧḩḫẖ",
		"iìíîïĩīĭįǐȉȋḭḯỉị",
		"jĵǰ",
		"kķǩḱḳḵ",
		"lĺļľḷḹḻḽ",
		"mḿṁṃ",
		"nñńņňǹṅṇṉṋ",
		"oòóôõöōŏőơǒǫǭȍȏȫȭȯȱṍṏṑṓọỏốồổỗộớờởỡợ",
		"pṕṗ",
		"rŕŗřȑȓṙṛṝṟ",
		"sśŝşšſșṡṣṥṧṩẛ",
		"tţťțṫṭṯṱẗ",
		"uùúûüũūŭůűųưǔǖǘǚǜȕȗṳṵṷṹṻụủứừửữự",
		"vṽṿ",
		"wŵẁẃẅẇẉẘ",
		"xẋẍ",
		"yýÿŷȳẏẙỳỵỷỹ",
		"zźżžẑẓẕ",
	}
	m := make(map[rune]rune, 256)
	for _, g := range groups {
		base, size := utf8.DecodeRuneInString(g)
		for _, r := range g[size:] {
			m[r] = base
		}
	}
	return m
}()

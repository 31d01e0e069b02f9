package storetest

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// contacts returns pending items with these contacts, in order.
func contacts(cs ...pool.Contact) []pool.Item {
	items := pending(len(cs))
	for i, c := range cs {
		items[i].Contact = c
	}
	return items
}

var (
	ada   = pool.Contact{Name: "Ada Lovelace", PhoneNumber: "+15551234567", Email: "ada@example.com", TimeZone: "Europe/London"}
	zoe   = pool.Contact{Name: "Zoë Ñúñez", PhoneNumber: "+442071234567", Email: "zoe@exämple.org"}
	grace = pool.Contact{Name: "Grace Hopper", Email: "grace@navy.mil"}
	dial  = pool.Contact{PhoneNumber: "+61255501234"}
)

// search lists every item of pool id matching s (and status), one page of
// perPage at a time, and checks the total.
func (b *bundle) search(id uuid.UUID, s string, status pool.Status) []pool.Item {
	b.t.Helper()
	var out []pool.Item
	b.read(func(tx store.Tx) error {
		for page := 1; ; page++ {
			got, total, err := tx.Items(b.ctx, id, pool.ItemQuery{Search: s, Status: status, Page: page, PerPage: 2})
			if err != nil {
				return err
			}
			out = append(out, got...)
			if len(got) < 2 {
				require.Equal(b.t, len(out), total, "search %q: total", s)
				return nil
			}
		}
	})
	// The same walk by keyset (ItemQuery.After) meets the same items, and
	// every page, the empty one past the last match included, counts them
	// all.
	var walked []pool.Item
	b.read(func(tx store.Tx) error {
		var after int64
		for pages := 0; ; pages++ {
			require.LessOrEqual(b.t, pages, len(out), "search %q: the walk does not end (after %d)", s, after)
			got, total, err := tx.Items(b.ctx, id, pool.ItemQuery{Search: s, Status: status, After: after, Page: 1, PerPage: 2})
			if err != nil {
				return err
			}
			require.Equal(b.t, len(out), total, "search %q after %d: total", s, after)
			if len(got) == 0 {
				return nil
			}
			walked = append(walked, got...)
			after = got[len(got)-1].ID
		}
	})
	require.Equal(b.t, out, walked, "search %q: walked by keyset", s)
	return out
}

// contactsOf returns the contacts of items, nil for none.
func contactsOf(items []pool.Item) []pool.Contact {
	if len(items) == 0 {
		return nil
	}
	out := make([]pool.Contact, len(items))
	for i, it := range items {
		out[i] = it.Contact
	}
	return out
}

// testItemsSearch: a search keeps the items of this pool, in insertion
// order, where every word of the search but the last is a word of the
// contact's name, email or phone number and the last begins one (words:
// letters and digits), case and diacritics aside; items without contact
// fields match no search.
func testItemsSearch(t *testing.T, b *bundle) {
	p := b.insertPool()
	other := b.insertPool()
	b.insertItems(p.UUID, contacts(ada, zoe, grace, dial, pool.Contact{}))
	b.insertItems(other.UUID, contacts(ada))

	for _, tc := range []struct {
		search string
		want   []pool.Contact
	}{
		{"lovelace", []pool.Contact{ada}},         // a name's word
		{"LOVE", []pool.Contact{ada}},             // its beginning, another case
		{"ada", []pool.Contact{ada}},              // name and email
		{"a", []pool.Contact{ada}},                // one letter
		{"ovelace", nil},                          // not the beginning of a word
		{"zoë", []pool.Contact{zoe}},              // beyond ASCII
		{"ZOË", []pool.Contact{zoe}},              //
		{"nunez", []pool.Contact{zoe}},            // diacritics aside
		{"ÑÚÑEZ", []pool.Contact{zoe}},            //
		{"example", []pool.Contact{ada, zoe}},     // email domains (exämple, diacritics aside)
		{"navy", []pool.Contact{grace}},           //
		{".mil", []pool.Contact{grace}},           // words only: the dot is not one
		{"grace@navy.mil", []pool.Contact{grace}}, // a whole address: its words
		{"ada@example.com", []pool.Contact{ada}},  //
		{"+1555", []pool.Contact{ada}},            // a phone number's beginning, with or without +
		{"1555", []pool.Contact{ada}},             //
		{"+15551234567", []pool.Contact{ada}},     //
		{"4567", nil},                             // not its end
		{"61", []pool.Contact{dial}},              //
		{"4", []pool.Contact{zoe}},                //
		{"grace hopper", []pool.Contact{grace}},   // every word
		{"hopper grace", []pool.Contact{grace}},   // in any order
		{"grace hop", []pool.Contact{grace}},      // the last word begins one
		{"gra hopper", nil},                       // the others are whole words
		{"example com", []pool.Contact{ada}},
		{"grace lovelace", nil},         // every word, of one contact
		{"e", []pool.Contact{ada, zoe}}, // example, exämple
		{"nobody", nil},                 //
		{"@", nil},                      // no word: nothing
		{"%", nil},                      //
		{`"ada"`, []pool.Contact{ada}},  // quotes are not words
		{"ada*", []pool.Contact{ada}},   // nor is a star
		{"AND", nil},                    // nor an operator
		{"London", nil},                 // the time zone is not searched
	} {
		got := b.search(p.UUID, tc.search, "")
		require.Equal(t, tc.want, contactsOf(got), "search %q", tc.search)
	}

	// A word given again asks for nothing more (the stores query it once):
	// "ada ada" asks for the word "ada", which Adam does not have.
	q := b.insertPool()
	adam := pool.Contact{Name: "Adam Smith"}
	b.insertItems(q.UUID, contacts(ada, adam))
	for _, tc := range []struct {
		search string
		want   []pool.Contact
	}{
		{"ada", []pool.Contact{ada, adam}},
		{"ada ada", []pool.Contact{ada}},
		{"ADA ada Ada", []pool.Contact{ada}},
		{"ada a", []pool.Contact{ada}},
		{"a ada", nil},
		{"adam ada", []pool.Contact{adam}},
		{"smith adam smi", []pool.Contact{adam}},
		{strings.Repeat("lovelace ", 30) + "ad", []pool.Contact{ada}},
	} {
		require.Equal(t, tc.want, contactsOf(b.search(q.UUID, tc.search, "")), "search %q", tc.search)
	}

	// With a status filter, and paged.
	all := b.search(p.UUID, "example", "")
	all[1].Status, all[1].Attempts, all[1].Token = pool.StatusCompleted, 1, 1
	b.update(all[1])
	require.Equal(t, []pool.Contact{zoe}, contactsOf(b.search(p.UUID, "example", pool.StatusCompleted)))
	require.Equal(t, []pool.Contact{ada}, contactsOf(b.search(p.UUID, "example", pool.StatusPending)))
	require.Equal(t, []pool.Contact{zoe}, contactsOf(b.search(p.UUID, "ñúñez", pool.StatusCompleted)))
	require.Empty(t, b.search(p.UUID, "ñúñez", pool.StatusPending))
	b.read(func(tx store.Tx) error {
		got, total, err := tx.Items(b.ctx, p.UUID, pool.ItemQuery{Search: "+", Page: 1, PerPage: 2})
		require.NoError(t, err)
		require.Zero(t, total, "no word, no match")
		require.Empty(t, got)
		got, total, err = tx.Items(b.ctx, p.UUID, pool.ItemQuery{Search: "example", Page: 2, PerPage: 1})
		require.NoError(t, err)
		require.Equal(t, 2, total)
		require.Equal(t, []pool.Contact{zoe}, contactsOf(got))
		// A page past the last still tells the total, of the filter's
		// matches when a status is given.
		got, total, err = tx.Items(b.ctx, p.UUID, pool.ItemQuery{Search: "example", Page: 3, PerPage: 1})
		require.NoError(t, err)
		require.Equal(t, 2, total)
		require.Empty(t, got)
		got, total, err = tx.Items(b.ctx, p.UUID, pool.ItemQuery{Search: "example", Status: pool.StatusCompleted, Page: 2, PerPage: 1})
		require.NoError(t, err)
		require.Equal(t, 1, total, "the matches in the status asked for")
		require.Empty(t, got)
		return nil
	})
}

// testItemsSearchFollowsWrites: a removed item is not found; a contact
// added again is found by its new fields only; a deleted pool's items are
// gone from every search.
func testItemsSearchFollowsWrites(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, contacts(ada, grace))
	b.write(func(tx store.Tx) error { return deleteItem(b.ctx, tx, items[0]) })
	require.Empty(t, b.search(p.UUID, "lovelace", ""))
	again := contacts(pool.Contact{Name: "Augusta King"})
	again[0].ContactUUID = items[0].ContactUUID
	b.insertItems(p.UUID, again)
	require.Empty(t, b.search(p.UUID, "lovelace", ""))
	require.Equal(t, []pool.Contact{{Name: "Augusta King"}}, contactsOf(b.search(p.UUID, "augusta", "")))
	require.Equal(t, []pool.Contact{grace}, contactsOf(b.search(p.UUID, "hopper", "")))

	// A deleted pool's items leave no trace in the search of another pool
	// that gets the same contacts.
	q := b.insertPool()
	b.write(func(tx store.Tx) error { return tx.DeletePool(b.ctx, p.UUID) })
	copied := contacts(pool.Contact{Name: "Someone else"})
	copied[0].ContactUUID = items[1].ContactUUID
	b.insertItems(q.UUID, copied)
	require.Empty(t, b.search(q.UUID, "hopper", ""))
	require.Len(t, b.search(q.UUID, "someone", ""), 1)
}

// testInsertItemsSkipKeepsContact: adding a contact that is already in the
// pool leaves its fields as they were.
func testInsertItemsSkipKeepsContact(t *testing.T, b *bundle) {
	p := b.insertPool()
	first := b.insertItems(p.UUID, contacts(ada))
	again := contacts(pool.Contact{Name: "Not Ada", Email: "not@ada.org"})
	again[0].ContactUUID = first[0].ContactUUID
	var n int
	b.write(func(tx store.Tx) (err error) {
		n, err = tx.InsertItems(b.ctx, p.UUID, again)
		return err
	})
	require.Zero(t, n)
	require.Equal(t, ada, b.item(first[0].ID).Contact)
	require.Empty(t, b.search(p.UUID, "not@ada", ""))
}

// testCopyItemsContacts: a copy keeps the contacts' fields, and its search
// finds them.
func testCopyItemsContacts(t *testing.T, b *bundle) {
	src := b.insertPool()
	dst := b.insertPool()
	b.insertItems(src.UUID, contacts(ada, pool.Contact{}, zoe))
	var n int
	b.write(func(tx store.Tx) (err error) {
		n, err = tx.CopyItems(b.ctx, src.UUID, dst.UUID, at(9))
		return err
	})
	require.Equal(t, 3, n)
	require.Equal(t, []pool.Contact{ada, {}, zoe}, contactsOf(b.allItems(dst.UUID, "")))
	require.Equal(t, []pool.Contact{zoe}, contactsOf(b.search(dst.UUID, "ñúñez", "")))
	require.Equal(t, []pool.Contact{ada}, contactsOf(b.search(dst.UUID, "lovelace", "")))
}

// testItemsSearchWords: every store cuts and folds words as
// store.SearchWords does, so that all find the same items, beyond ASCII
// and Latin too: a word is a run of letters, decimal digits and marks
// (not ², not a private-use character), case is folded with Go's Unicode
// tables (Cherokee, Georgian Mtavruli, Adlam, ẞ), the Latin letters with
// diacritics meet their base letter but the Turkish dotless ı stays apart
// from i, and decimal digits of other scripts are not ASCII digits.
func testItemsSearchWords(t *testing.T, b *bundle) {
	type search struct {
		s     string
		found bool
	}
	for _, tc := range []struct {
		contact  pool.Contact
		searches []search
	}{
		{pool.Contact{Name: "Flat x²y"}, []search{ // ² is No: it separates
			{"y", true}, {"x", true}, {"x²y", true}, {"x y", true}, {"x2y", false}, {"²", false},
		}},
		{pool.Contact{Name: "Floor ½ Ⅻ"}, []search{{"½", false}, {"Ⅻ", false}, {"floor ½", true}}},
		{pool.Contact{Name: "Unit ab\uE000cd"}, []search{ // private use (Co) separates
			{"cd", true}, {"ab", true}, {"ab cd", true}, {"abcd", false},
		}},
		{pool.Contact{Name: "Ꭰ Ꭱ"}, []search{{"ꭰ", true}, {"Ꭰ", true}, {"ꭱ ꭰ", true}}}, // Cherokee, small letters of Unicode 8.0
		{pool.Contact{Name: "ꭰꭱ"}, []search{{"ᎠᎡ", true}, {"Ꭰ", true}}},
		{pool.Contact{Name: "Ნინო Beridze"}, []search{{"ნინო", true}, {"ᲜᲘ", true}}}, // Georgian Mtavruli (Unicode 11.0)
		{pool.Contact{Name: "\U0001E900\U0001E923\U0001E924\U0001E922\U0001E925 Diallo"}, []search{ // Adlam (Unicode 9.0)
			{"\U0001E922\U0001E923\U0001E924", true}, {"\U0001E900\U0001E923\U0001E924", true}, {"diallo", true},
		}},
		{pool.Contact{Name: "STRAẞE"}, []search{{"straße", true}, {"strasse", false}}}, // capital sharp s (Unicode 5.1)
		{pool.Contact{Name: "\u212Aelvin"}, []search{{"kelvin", true}}},                // the Kelvin sign
		{pool.Contact{Name: "ΣΊΣΥΦΟΣ"}, []search{{"σίσυφος", true}, {"σισυφος", false}}},
		{pool.Contact{Name: "Priya शर्मा"}, []search{{"शर्मा", true}, {"शर", true}, {"शर्", true}, {"मा", false}}}, // marks, Mn and Mc
		{pool.Contact{Name: "Anbu தமிழ்செல்வன்"}, []search{{"தமிழ்செல்வன்", true}, {"தமி", true}, {"செல்வன்", false}}},
		{pool.Contact{Name: "Ze\u0301phyr"}, []search{{"zéphyr", true}, {"zephyr", true}, {"ze\u0301", true}}}, // a decomposed é
		{pool.Contact{Name: "Dvořák Ångström"}, []search{{"dvorak", true}, {"ANGSTROM", true}, {"DVOŘÁK ångs", true}}},
		{pool.Contact{Name: "Łódź Øresund"}, []search{{"łodz", true}, {"lodz", false}, {"øre", true}, {"oresund", false}}},
		{pool.Contact{Name: "IŞIK ılgın"}, []search{ // the Turkish dotless ı stays apart from i
			{"işık", false}, {"işik", true}, {"isik", true}, {"ılgın", true}, {"ILGIN", false}, {"ilgin", false},
		}},
		{pool.Contact{Name: "Suite ٣٤"}, []search{{"٣٤", true}, {"٣", true}, {"34", false}}}, // decimal digits (Nd) of any script
		{pool.Contact{Name: "北京 Li"}, []search{{"北京", true}, {"北", true}, {"京", false}}},
		{pool.Contact{Email: "ada@example.com", PhoneNumber: "+15551234567"}, []search{
			{"ada@example.com", true}, {"example.com", true}, {"exam", true}, {"ample", false}, {"ADA@EX", true},
			{"+15551234567", true}, {"15551234567", true}, {"1555", true}, {"4567", false}, {"+1 555", false},
		}},
		{pool.Contact{Name: "Desk +1 (555) 123-4567"}, []search{{"555 4567", true}, {"1 555 123 45", true}, {"15551234567", false}}},
	} {
		p := b.insertPool()
		b.insertItems(p.UUID, contacts(tc.contact, pool.Contact{Name: "Somebody Else", Email: "else@else.org"}, pool.Contact{}))
		for _, s := range tc.searches {
			var want []pool.Contact
			if s.found {
				want = []pool.Contact{tc.contact}
			}
			require.Equal(t, want, contactsOf(b.search(p.UUID, s.s, "")), "contact %+v, search %q", tc.contact, s.s)
		}
	}
}

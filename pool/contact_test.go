package pool_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

func TestContact_Validate(t *testing.T) {
	t.Parallel()
	// email254 is a 254-byte address: a 64-byte local part, labels of 63,
	// 63 and 61 bytes.
	email254 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	require.Len(t, email254, 254)
	ok := pool.Contact{Name: "Ada Lovelace", PhoneNumber: "+15551234567", Email: "ada@example.com", TimeZone: "America/New_York"}
	tests := []struct {
		name  string
		edit  func(c *pool.Contact)
		field string // "" when valid
		rule  string
	}{
		{"OKAll", func(*pool.Contact) {}, "", ""},
		{"OKNone", func(c *pool.Contact) { *c = pool.Contact{} }, "", ""},
		{"OKNameUnicode", func(c *pool.Contact) { c.Name = "Zoë Ñúñez 日本" }, "", ""},
		{"OKNameAtMax", func(c *pool.Contact) { c.Name = strings.Repeat("é", pool.MaxContactNameLen) }, "", ""},
		{"OKPhoneShortest", func(c *pool.Contact) { c.PhoneNumber = "+12" }, "", ""},
		{"OKPhoneLongest", func(c *pool.Contact) { c.PhoneNumber = "+123456789012345" }, "", ""},
		{"OKEmailSubdomain", func(c *pool.Contact) { c.Email = "first.last+tag@mail.example.co.uk" }, "", ""},
		{"OKEmailHyphenInLabel", func(c *pool.Contact) { c.Email = "ada@my-example.com" }, "", ""},
		// The limits of an address, each at its bound: 254 bytes in all, a
		// local part of 64, domain labels of 63.
		{"OKEmailAtEveryLimit", func(c *pool.Contact) { c.Email = email254 }, "", ""},
		{"OKZoneUTC", func(c *pool.Contact) { c.TimeZone = "UTC" }, "", ""},
		{"OKZoneChatham", func(c *pool.Contact) { c.TimeZone = "Pacific/Chatham" }, "", ""},
		{"OKZoneKolkata", func(c *pool.Contact) { c.TimeZone = "Asia/Kolkata" }, "", ""},

		{"ErrNameTooLong", func(c *pool.Contact) { c.Name = strings.Repeat("é", pool.MaxContactNameLen+1) }, "name", validate.RuleLength},
		{"ErrNameOf256Characters", func(c *pool.Contact) { c.Name = strings.Repeat("é", 256) }, "name", validate.RuleLength},
		{"ErrNameNUL", func(c *pool.Contact) { c.Name = "Ada\x00" }, "name", validate.RuleFormat},
		{"ErrNameInvalidUTF8", func(c *pool.Contact) { c.Name = "Ada \xff" }, "name", validate.RuleFormat},
		{"ErrNamePadded", func(c *pool.Contact) { c.Name = " Ada" }, "name", validate.RuleFormat},
		{"ErrNameLineBreak", func(c *pool.Contact) { c.Name = "Ada\nLovelace" }, "name", validate.RuleFormat},
		{"ErrNameBell", func(c *pool.Contact) { c.Name = "Ada\x07" }, "name", validate.RuleFormat},
		{"ErrPhoneNoPlus", func(c *pool.Contact) { c.PhoneNumber = "15551234567" }, "phone_number", validate.RuleFormat},
		{"ErrPhoneSpaces", func(c *pool.Contact) { c.PhoneNumber = "+1 555 123 4567" }, "phone_number", validate.RuleFormat},
		{"ErrPhoneDashes", func(c *pool.Contact) { c.PhoneNumber = "+1-555-123-4567" }, "phone_number", validate.RuleFormat},
		{"ErrPhoneLeadingZero", func(c *pool.Contact) { c.PhoneNumber = "+0555123456" }, "phone_number", validate.RuleFormat},
		{"ErrPhoneTooLong", func(c *pool.Contact) { c.PhoneNumber = "+1234567890123456" }, "phone_number", validate.RuleFormat},
		{"ErrPhoneTooShort", func(c *pool.Contact) { c.PhoneNumber = "+1" }, "phone_number", validate.RuleFormat},
		{"ErrPhoneLetters", func(c *pool.Contact) { c.PhoneNumber = "+1555CALLNOW" }, "phone_number", validate.RuleFormat},
		{"ErrEmailNoAt", func(c *pool.Contact) { c.Email = "ada.example.com" }, "email", validate.RuleFormat},
		{"ErrEmailTwoAts", func(c *pool.Contact) { c.Email = "ada@lab@example.com" }, "email", validate.RuleFormat},
		{"ErrEmailNoDomainDot", func(c *pool.Contact) { c.Email = "ada@localhost" }, "email", validate.RuleFormat},
		{"ErrEmailEmptyLabel", func(c *pool.Contact) { c.Email = "ada@example..com" }, "email", validate.RuleFormat},
		{"ErrEmailSpace", func(c *pool.Contact) { c.Email = "ada lovelace@example.com" }, "email", validate.RuleFormat},
		{"ErrEmailNoLocal", func(c *pool.Contact) { c.Email = "@example.com" }, "email", validate.RuleFormat},
		{"ErrEmailTooLong", func(c *pool.Contact) { c.Email = strings.Repeat("a", 60) + "@" + strings.Repeat("b", 200) + ".com" }, "email", validate.RuleLength},
		{"ErrEmail255Bytes", func(c *pool.Contact) { c.Email = email254 + "d" }, "email", validate.RuleLength},
		{"ErrEmailLocalPart65", func(c *pool.Contact) { c.Email = strings.Repeat("a", 65) + "@example.com" }, "email", validate.RuleFormat},
		{"ErrEmailLabel64", func(c *pool.Contact) { c.Email = "ada@" + strings.Repeat("b", 64) + ".com" }, "email", validate.RuleFormat},
		{"ErrEmailLabelStartsWithHyphen", func(c *pool.Contact) { c.Email = "ada@-example.com" }, "email", validate.RuleFormat},
		{"ErrEmailLabelEndsWithHyphen", func(c *pool.Contact) { c.Email = "ada@example-.com" }, "email", validate.RuleFormat},
		{"ErrEmailNUL", func(c *pool.Contact) { c.Email = "ada\x00@example.com" }, "email", validate.RuleFormat},
		{"ErrZoneUnknown", func(c *pool.Contact) { c.TimeZone = "Mars/Olympus_Mons" }, "timezone", validate.RuleFormat},
		{"ErrZoneLocal", func(c *pool.Contact) { c.TimeZone = "Local" }, "timezone", validate.RuleFormat},
		{"ErrZonePath", func(c *pool.Contact) { c.TimeZone = "../../etc/passwd" }, "timezone", validate.RuleFormat},
		{"ErrZoneOffset", func(c *pool.Contact) { c.TimeZone = "+02:00" }, "timezone", validate.RuleFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.edit(&c)
			_, err := pool.PrepareItems([]pool.NewItem{{ContactUUID: uuid.New()}, {ContactUUID: uuid.New(), Contact: c}})
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			requireFieldRules(t, err, map[string]string{"items[1]." + tt.field: tt.rule})
		})
	}
}

// TestContact_MessagesEchoABoundedValue: a megabyte sent as a phone
// number, an e-mail address or a zone is not sent back in the message.
func TestContact_MessagesEchoABoundedValue(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 1<<20)
	_, err := pool.PrepareItems([]pool.NewItem{{ContactUUID: uuid.New(),
		Contact: pool.Contact{PhoneNumber: big, Email: big + "@", TimeZone: big}}})
	var errs validate.Errors
	require.ErrorAs(t, err, &errs)
	require.Len(t, errs, 3)
	for _, fe := range errs {
		require.Less(t, len(fe.Message), 200, "%s: %.200s", fe.Field, fe.Message)
	}
}

// TestNewItem_ContactJSON: the contact's fields are inline in a NewItem's
// JSON and an Item's, under the API's names.
func TestNewItem_ContactJSON(t *testing.T) {
	t.Parallel()
	var n pool.NewItem
	require.NoError(t, json.Unmarshal([]byte(`{"contact_uuid":"0b8f5a3e-3f6e-4c1b-9a7d-2a1b3c4d5e6f",
		"name":"Ada","phone_number":"+15551234567","email":"ada@example.com","timezone":"Europe/London"}`), &n))
	require.Equal(t, pool.Contact{Name: "Ada", PhoneNumber: "+15551234567", Email: "ada@example.com", TimeZone: "Europe/London"}, n.Contact)
	it := n.Item(poolID, t0)
	require.Equal(t, n.Contact, it.Contact)
	var back pool.Item
	b, err := json.Marshal(it)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, n.Contact, back.Contact)
}

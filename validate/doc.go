// Package validate is poolq's field-validation mechanism: a handful of rules
// (required, length in runes, integer range, enum, custom) that a value's
// Validate method runs one after the other, collecting every failure instead
// of stopping at the first.
//
// A failed validation returns a [Errors] value: a list of [FieldError], each
// naming the field by its JSON name, the rule that failed and a message a
// person can read. errors.Is(err, [ErrInvalid]) reports true for it, and
// errors.As recovers the list:
//
//	var fe validate.Errors
//	if errors.As(err, &fe) {
//		for _, f := range fe {
//			fmt.Println(f.Field, f.Rule, f.Message)
//		}
//	}
//
// The package imports only the standard library.
package validate

package validate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/poolq/poolq/validate"
)

// A Validator runs every rule and reports every failing field at once.
func ExampleValidator() {
	name, maxParallel := "ab", 101

	var v validate.Validator
	v.Length("name", name, 3, 255)
	v.IntRange("max_parallel_items", maxParallel, 1, 100)
	err := v.Err()

	fmt.Println(errors.Is(err, validate.ErrInvalid))
	var fe validate.Errors
	if errors.As(err, &fe) {
		for _, f := range fe {
			fmt.Printf("%s (%s): %s\n", f.Field, f.Rule, f.Message)
		}
	}
	// Output:
	// true
	// name (length): must be between 3 and 255 characters (got 2)
	// max_parallel_items (range): must be between 1 and 100 (got 101)
}

// Length counts characters (runes), not bytes.
func ExampleValidator_Length() {
	var v validate.Validator
	fmt.Println(v.Length("name", "日本語", 3, 255)) // 9 bytes, 3 characters
	fmt.Println(v.Length("name", "日本", 3, 255))
	fmt.Println(v.Errors()[0].Message)
	// Output:
	// true
	// false
	// must be between 3 and 255 characters (got 2)
}

// Merge puts a list element's failures under its index.
func ExampleValidator_Merge() {
	item := func() error {
		var v validate.Validator
		v.Check(false, "contact_uuid", validate.RuleRequired, "is required")
		return v.Err()
	}

	var v validate.Validator
	v.Merge("items[2].", item())
	fmt.Println(v.Err())
	// Output:
	// invalid input: items[2].contact_uuid: is required
}

// Errors survive wrapping, and marshal to the shape an HTTP layer can return.
func ExampleErrors() {
	var v validate.Validator
	v.Required("description", "   ")
	err := fmt.Errorf("create pool: %w", v.Err())

	fmt.Println(err)
	var fe validate.Errors
	if errors.As(err, &fe) {
		_ = json.NewEncoder(os.Stdout).Encode(fe)
		fmt.Println(fe.Fields(), fe.Has("description"), fe.Has("name"))
	}
	// Output:
	// create pool: invalid input: description: is required
	// [{"field":"description","rule":"required","message":"is required"}]
	// [description] true false
}

package pool_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// New applies the API's defaults to every field that is not given.
func ExampleNew() {
	id := uuid.MustParse("3c90c3cc-0d44-4b50-8888-8dd25736052a")
	now := time.Date(2023, 11, 7, 6, 31, 56, 0, time.FixedZone("CET", 3600))

	p, err := pool.New(id, pool.CreateParams{Name: "VIP customers", Description: "High-value leads"}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Name, p.Type, p.MaxParallelItems, p.MaxRetries, p.IsActive)
	fmt.Println(p.CreatedAt.Format(time.RFC3339), p.Cap(), p.Ceiling())
	// Output:
	// VIP customers FIFO 10 3 true
	// 2023-11-07T05:31:56Z 1 4
}

// Validate reports every failing field at once, by its JSON name.
func ExampleCreateParams_Validate() {
	zero, minusOne := 0, -1
	p := pool.CreateParams{
		Name:             "ab",
		Description:      "   ",
		Type:             "Random",
		MaxParallelItems: &zero,
		MaxRetries:       &minusOne,
	}
	err := p.Validate()

	fmt.Println(errors.Is(err, validate.ErrInvalid))
	var fe validate.Errors
	if errors.As(err, &fe) {
		for _, f := range fe {
			fmt.Printf("%s: %s: %s\n", f.Field, f.Rule, f.Message)
		}
	}
	// Output:
	// true
	// name: length: must be between 3 and 255 characters (got 2)
	// description: required: is required
	// type: enum: must be one of FIFO, LIFO, Parallel (got "Random")
	// max_parallel_items: range: must be between 1 and 100 (got 0)
	// max_retries: range: must be at least 0 (got -1)
}

// Apply changes only the given fields, and says whether anything changed.
func ExampleUpdateParams_Apply() {
	p, _ := pool.New(uuid.New(), pool.CreateParams{Name: "VIP customers", Description: "High-value leads"}, time.Now())

	parallel := pool.Type("parallel") // any case; stored canonical
	twenty, tooMany := 20, 101
	p, changed, err := pool.UpdateParams{Type: &parallel, MaxParallelItems: &twenty}.Apply(p)
	fmt.Println(p.Name, p.Type, p.MaxParallelItems, p.Cap(), changed, err)

	_, changed, err = pool.UpdateParams{MaxParallelItems: &twenty}.Apply(p)
	fmt.Println(changed, err)

	_, changed, err = pool.UpdateParams{MaxParallelItems: &tooMany}.Apply(p)
	fmt.Println(changed, err)
	// Output:
	// VIP customers Parallel 20 20 true <nil>
	// false <nil>
	// false invalid input: max_parallel_items: must be between 1 and 100 (got 101)
}

// CopyName names a duplicate after its source unless a name is given.
func ExampleDuplicateParams_CopyName() {
	fmt.Println(pool.DuplicateParams{}.CopyName("VIP customers"))
	name := "Second wave"
	fmt.Println(pool.DuplicateParams{Name: &name}.CopyName("VIP customers"))
	// Output:
	// VIP customers (copy)
	// Second wave
}

// An item's life: dispatched, failed and retried, then completed.
func ExampleItem_Dispatched() {
	one := 1
	p, _ := pool.New(uuid.New(), pool.CreateParams{Name: "VIP customers", Description: "d", MaxRetries: &one}, time.Now())
	now := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)
	it := pool.NewItem{ContactUUID: uuid.New()}.Item(p.UUID, now)

	it, _ = it.Dispatched(p.Ceiling(), now, now.Add(10*time.Minute))
	first := it.Token // the fencing token of this dispatch: a lease presents it
	fmt.Println(it.Status, it.Attempts, first > 0)

	it, _ = it.Failed(p.Ceiling(), now, pool.Failure{Note: "busy"}, time.Hour)
	fmt.Println(it.Status, it.NextRetryAt.Format(time.Kitchen), it.Due(now))

	now = now.Add(time.Hour)
	it, _ = it.Dispatched(p.Ceiling(), now, now.Add(10*time.Minute))
	it, _ = it.InCall()
	fmt.Println(it.Status, it.Attempts, it.Token > first)

	it, _ = it.Completed(now, "answered")
	fmt.Println(it.Status, it.RetryCount, it.Notes)

	_, err := it.Skipped("too late")
	fmt.Println(errors.Is(err, pool.ErrWrongStatus))
	// Output:
	// Processing 1 true
	// Retrying 10:00AM false
	// In_Call 2 true
	// Completed 1 answered
	// true
}

// NewPage computes the last page; an empty listing is one empty page.
func ExampleNewPage() {
	q, _ := pool.PoolQuery{}.Normalize()
	pg := pool.NewPage[pool.Pool](q.Page, q.PerPage, 16, nil)
	fmt.Println(pg.CurrentPage, pg.LastPage, pg.PerPage, pg.Total, len(pg.Data))
	// Output:
	// 1 2 15 16 0
}

package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/poolq/poolq/validate"
)

// exampleEngine opens an engine over an in-memory store.
func exampleEngine(opts queue.Options) (*queue.Engine, func()) {
	st, err := sqlite.Open(context.Background(), ":memory:", sqlite.Options{})
	if err != nil {
		panic(err)
	}
	eng, err := queue.New(st, opts)
	if err != nil {
		panic(err)
	}
	return eng, func() { eng.Close(); st.Close() }
}

// contact returns a fixed contact UUID for the examples.
func contact(n int) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Append(nil, n)) }

func Example() {
	ctx := context.Background()
	eng, done := exampleEngine(queue.Options{})
	defer done()

	p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "VIP customers", Description: "High-value leads"})
	res, _ := eng.Add(ctx, p.UUID,
		pool.NewItem{ContactUUID: contact(1), Payload: json.RawMessage(`{"phone":"+15550100"}`)},
		pool.NewItem{ContactUUID: contact(2)})
	fmt.Println("added", res.ContactsAdded)

	l, _ := eng.Dequeue(ctx, p.UUID)
	fmt.Println("dialing", string(l.Item.Payload), "attempt", l.Attempt)
	_ = eng.MarkInCall(ctx, l)
	_ = eng.Complete(ctx, l, "answered")

	d, _ := eng.Pool(ctx, p.UUID)
	fmt.Println(d.StatusCounts[pool.StatusCompleted], "completed,", d.StatusCounts[pool.StatusPending], "pending")
	// Output:
	// added 2
	// dialing {"phone":"+15550100"} attempt 1
	// 1 completed, 1 pending
}

func ExampleEngine_CreatePool() {
	ctx := context.Background()
	eng, done := exampleEngine(queue.Options{})
	defer done()

	p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "VIP customers", Description: "High-value leads"})
	fmt.Println(p.Name, p.Type, p.MaxParallelItems, p.MaxRetries, p.IsActive)

	_, err := eng.CreatePool(ctx, pool.CreateParams{Name: "VI", Type: "Random", MaxParallelItems: new(0)})
	var fe validate.Errors
	if errors.As(err, &fe) {
		for _, f := range fe {
			fmt.Printf("%s (%s): %s\n", f.Field, f.Rule, f.Message)
		}
	}
	// Output:
	// VIP customers FIFO 10 3 true
	// name (length): must be between 3 and 255 characters (got 2)
	// description (required): is required
	// type (enum): must be one of FIFO, LIFO, Parallel (got "Random")
	// max_parallel_items (range): must be between 1 and 100 (got 0)
}

func ExampleEngine_UpdatePool() {
	ctx := context.Background()
	eng, done := exampleEngine(queue.Options{})
	defer done()

	p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "VIP customers", Description: "High-value leads"})
	p, _ = eng.UpdatePool(ctx, p.UUID, pool.UpdateParams{Type: new(pool.Parallel), MaxParallelItems: new(20)})
	fmt.Println(p.Name, p.Type, p.MaxParallelItems)
	// Output:
	// VIP customers Parallel 20
}

// Each type dispatches the same five contacts in its own order.
func Example_order() {
	ctx := context.Background()
	eng, done := exampleEngine(queue.Options{})
	defer done()

	for _, typ := range pool.Types() {
		p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "order demo", Description: "demo", Type: typ})
		for i, prio := range []int{0, 5, 1, 5, 9} {
			_, _ = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contact(i), Priority: prio})
		}
		fmt.Printf("%-8s", typ)
		for {
			l, err := eng.TryDequeue(ctx, p.UUID)
			if errors.Is(err, queue.ErrEmpty) {
				break
			}
			for i := range 5 {
				if l.ContactUUID == contact(i) {
					fmt.Printf(" #%d(p%d)", i, l.Item.Priority)
				}
			}
			_ = eng.Complete(ctx, l, "")
		}
		fmt.Println()
	}
	// Output:
	// FIFO     #0(p0) #1(p5) #2(p1) #3(p5) #4(p9)
	// LIFO     #4(p9) #3(p5) #2(p1) #1(p5) #0(p0)
	// Parallel #4(p9) #1(p5) #3(p5) #2(p1) #0(p0)
}

// A busy line is retried after RetryDelay until the ceiling (max_retries + 1
// attempts) is reached.
func ExampleEngine_Fail() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	eng, done := exampleEngine(queue.Options{RetryDelay: time.Hour, Now: func() time.Time { return now }})
	defer done()

	p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "retry demo", Description: "demo", MaxRetries: new(1)})
	_, _ = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contact(1)})

	for {
		l, err := eng.TryDequeue(ctx, p.UUID)
		if errors.Is(err, queue.ErrEmpty) {
			it, _ := eng.Item(ctx, p.UUID, contact(1))
			if it.Status.Terminal() {
				fmt.Println(it.Status, "after", it.Attempts, "attempts:", it.Notes)
				break
			}
			fmt.Println(it.Status, "until", it.NextRetryAt.Format(time.Kitchen))
			now = *it.NextRetryAt
			continue
		}
		_ = eng.Fail(ctx, l, queue.Failure{Note: "busy"})
	}
	// Output:
	// Retrying until 10:00AM
	// Failed after 2 attempts: busy
}

// A lease that expired cannot settle the item any more: the item was taken
// back as a failed attempt, and a late Complete gets ErrLeaseLost.
func ExampleEngine_Complete_leaseLost() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	eng, done := exampleEngine(queue.Options{LeaseTimeout: time.Minute, Now: func() time.Time { return now }})
	defer done()

	p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "lease demo", Description: "demo"})
	_, _ = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contact(1)})
	l, _ := eng.Dequeue(ctx, p.UUID)

	now = now.Add(2 * time.Minute) // the worker hung
	err := eng.Complete(ctx, l, "answered")
	fmt.Println(errors.Is(err, queue.ErrLeaseLost))
	it, _ := eng.Item(ctx, p.UUID, contact(1))
	fmt.Println(it.Status, it.RetryCount, it.Notes)
	// Output:
	// true
	// Retrying 1 lease expired
}

// Work runs a handler over a pool's items: nil completes, an error fails (and
// retries), Final fails for good.
func ExampleEngine_Work() {
	ctx, cancel := context.WithCancel(context.Background())
	eng, done := exampleEngine(queue.Options{})
	defer done()

	p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "runner demo", Description: "demo", Type: pool.Parallel})
	for i := range 4 {
		_, _ = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contact(i)})
	}

	var mu sync.Mutex
	events := map[queue.EventKind]int{}
	settled := 0
	err := eng.Work(ctx, func(ctx context.Context, l *queue.Lease) error {
		if l.ContactUUID == contact(3) {
			return queue.Final(errors.New("wrong number"))
		}
		return nil
	}, queue.WorkOptions{
		Pools:   []uuid.UUID{p.UUID},
		Workers: 2,
		OnEvent: func(ev queue.Event) {
			mu.Lock()
			defer mu.Unlock()
			events[ev.Kind]++
			if ev.Kind != queue.EventDispatched {
				if settled++; settled == 4 {
					cancel() // all four settled: stop
				}
			}
		},
	})
	fmt.Println("work:", err)
	fmt.Println(events[queue.EventDispatched], "dispatched,", events[queue.EventCompleted], "completed,", events[queue.EventFailed], "failed")
	// Output:
	// work: <nil>
	// 4 dispatched, 3 completed, 1 failed
}

// The batch path: claim many items in one transaction, report their results
// in another.
func ExampleEngine_Settle() {
	ctx := context.Background()
	eng, done := exampleEngine(queue.Options{})
	defer done()

	p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "Blast", Description: "bulk", Type: pool.Parallel})
	items := make([]pool.NewItem, 5)
	for i := range items {
		items[i] = pool.NewItem{ContactUUID: contact(i)}
	}
	_, _ = eng.Add(ctx, p.UUID, items...)

	ls, _ := eng.DequeueN(ctx, p.UUID, 3)
	fmt.Println("claimed", len(ls))
	results, err := eng.Settle(ctx,
		queue.Outcome{Lease: ls[0], Note: "answered"},
		queue.Outcome{Lease: ls[1], Failure: &queue.Failure{Note: "busy"}},
		queue.Outcome{Lease: ls[2], Failure: &queue.Failure{Final: true, Note: "wrong number"}},
		queue.Outcome{Lease: ls[0], Note: "twice"}, // already settled above
	)
	fmt.Println(err, results[:3], errors.Is(results[3], queue.ErrLeaseLost))

	d, _ := eng.Pool(ctx, p.UUID)
	for _, s := range []pool.Status{pool.StatusCompleted, pool.StatusRetrying, pool.StatusFailed, pool.StatusPending} {
		fmt.Println(s, d.StatusCounts[s])
	}
	// Output:
	// claimed 3
	// <nil> [<nil> <nil> <nil>] true
	// Completed 1
	// Retrying 1
	// Failed 1
	// Pending 2
}

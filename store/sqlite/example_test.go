package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
)

// A store is used through transactions: here one Write creates a pool and
// adds three contacts, and another asks which are due first.
func ExampleOpen() {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{}) // a file name in production
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	now := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	p, err := pool.New(uuid.New(), pool.CreateParams{Name: "VIP customers", Description: "High-value leads"}, now)
	if err != nil {
		log.Fatal(err)
	}
	err = st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		var items []pool.Item
		for i, phone := range []string{"+33 1 00 00 00 01", "+33 1 00 00 00 02", "+33 1 00 00 00 03"} {
			n := pool.NewItem{ContactUUID: uuid.New(), Priority: i, Payload: []byte(fmt.Sprintf("%q", phone))}
			items = append(items, n.Item(p.UUID, now))
		}
		added, err := tx.InsertItems(ctx, p.UUID, items)
		fmt.Println("added", added)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	err = st.Write(ctx, func(tx store.Tx) error {
		due, err := tx.Due(ctx, p.UUID, pool.FIFO, now, 2)
		for _, it := range due {
			fmt.Println("due", string(it.Payload), it.Status)
		}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// added 3
	// due "+33 1 00 00 00 01" Pending
	// due "+33 1 00 00 00 02" Pending
}

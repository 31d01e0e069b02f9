// Command httpapi serves the contact-pool REST API over poolq: the paths,
// bodies, envelopes and status codes of the public API that poolq's model
// comes from, answered by a queue.Engine on an embedded SQLite file (or PostgreSQL), plus
// dispatch endpoints for a dialer that talks HTTP. The JSON it sends is
// poolq's own types marshalled as they are (pool.Pool, pool.Detail,
// pool.Page, pool.Item, pool.AddResult, pool.Duplicated, queue.Lease): no
// translation layer (campaign.Rule, campaign.Campaign, campaign.DNCEntry and
// campaign.Escalation too).
//
//	go run ./examples/httpapi [-addr 127.0.0.1:8080] [-db poolq-httpapi.db] [-token T]
//	go run ./examples/httpapi -db 'postgres://user:pw@host:5432/calls?schema=poolq'
//
// -db is an SQLite file (created if missing) or a PostgreSQL URL, whose
// "schema" parameter names the schema of poolq's tables (several API
// servers on one database and schema share the pools, and wake each
// other's waiting claims).
//
// It prints the address, the token (its source's name, "$POOLQ_TOKEN", when
// it comes from there, so that a secret set in the environment stays out of
// the log) and a sample curl, and shuts down
// gracefully on SIGINT or SIGTERM: it stops accepting connections, ends the
// dispatches waiting for an item (they answer as a claim without a wait
// would: 204 when nothing is due, 409 AT_CAPACITY when the pool is full),
// and waits up to 10 s for the requests in progress before closing the
// engine and the database.
//
// # Authentication
//
// Every request needs "Authorization: Bearer <token>". The token is -token,
// else $POOLQ_TOKEN, else a random one printed at start; spaces and a
// newline around it are trimmed (a blank one, empty included, is refused at
// start: -token "$SECRET" with SECRET unset does not fall back), as they
// are around the token a client presents. It is compared in
// constant time. A request without a token gets 401 MISSING_AUTH_TOKEN, one
// with another token (or another scheme) 401 INVALID_AUTH_TOKEN, both with
// a WWW-Authenticate header, before routing (an unknown path without a
// token is 401 too). So does a request with more than one Authorization
// header, whichever holds the token: a proxy in front that reads another
// one than the server would have seen another credential.
//
// # Endpoints
//
// Pools (the API's pages; [pool.Pool] fields, status names and limits):
//
//	POST   /api/v1/pools                     201 "Pool created successfully", data: pool; Location header
//	GET    /api/v1/pools                     200 page of pools; ?page= ?per_page= (≤100, default 15) ?search= ?type= ?is_active=
//	GET    /api/v1/pools/{uuid}              200 pool + status_counts (every status) + campaigns ([{uuid, name, status}])
//	PUT    /api/v1/pools/{uuid}              200 "Pool updated successfully"; partial: only the fields sent change
//	DELETE /api/v1/pools/{uuid}              200 "Pool deleted successfully", data: null; 409 while an item is in flight
//	POST   /api/v1/pools/{uuid}/duplicate    201 pool + contacts_copied; body optional: {"name", "copy_contacts"}
//	POST   /api/v1/pools/{uuid}/contacts     200 {"contacts_added", "contacts_skipped"}; body {"contact_uuids": [...], "priority": 0}
//	                                         and/or "contacts": [{"contact_uuid", "name", "phone_number", "email", "timezone", "priority", "payload"}]
//	GET    /api/v1/pools/{uuid}/contacts     200 page of items in insertion order; ?page= ?per_page= (≤100, default 25) ?status= ?search=
//
// The API adds contacts by UUID (contact_uuids, one priority for all);
// poolq also takes "contacts", each with the contact's fields that the item
// keeps and shows (name, phone_number, email, timezone: optional, validated
// as pool.Contact says: an E.164 number, an IANA zone), its own priority and
// payload (any JSON, at most 64 KiB as sent, nested at most 64 deep; kept with the bytes sent, and
// handed back at dispatch, and in listings, as the same JSON value but
// compacted, its characters and escapes as sent: compare it as JSON, not
// as bytes). Both lists
// may be given: one transaction adds them all, at most 10,000. A field
// error names the list's index ("contacts[2].phone_number").
// ?search= keeps the items whose contact's name, email or phone has every
// word of the search (the last one as a beginning: "ada love" finds Ada
// Lovelace, "+1555" finds +15551234567), case and diacritics aside.
//
// Dispatch, for a dialer that talks HTTP:
//
//	POST /api/v1/pools/{uuid}/dispatch[?wait=5s]          claim the next due item
//	POST /api/v1/pools/{uuid}/contacts/{contact}/in-call  {"token", "item_id"}                               → the lease, status In_Call
//	POST /api/v1/pools/{uuid}/contacts/{contact}/extend   {"token", "item_id", "seconds"} (1–86400)          → the lease, new expires_at
//	POST /api/v1/pools/{uuid}/contacts/{contact}/complete {"token", "item_id", "note"?}                      → the item, Completed
//	POST /api/v1/pools/{uuid}/contacts/{contact}/fail     {"token", "item_id", "note"?, "retry_at"?, "final"?} → the item, Retrying, Scheduled or Failed
//	POST /api/v1/pools/{uuid}/contacts/{contact}/release  {"token", "item_id"}                               → the item, due again, attempt not counted; 409 WRONG_STATUS once In_Call
//
// A claim answers 200 "Item dispatched" with a [queue.Lease] as data:
// pool_uuid, contact_uuid, item_id, token, attempt, expires_at and the item
// (with its payload). The settle endpoints take the lease back: pool and
// contact in the path, token and item_id in the body. The token
// is a fencing token, not a secret (the bearer token is the access control):
// a settlement that presents a token which is no longer the item's current
// one (settled already, or the item was dispatched again) gets 409
// LEASE_LOST and changes nothing. One that comes after its lease's end
// gets 409 LEASE_LOST too, and the expiry it found is written then (a
// failed attempt, as at the next claim), as every write on the pool
// writes the expiries it finds. item_id is required: a token counts the
// dispatches of one item, so only with the item_id can a settlement tell a
// claim of the current item from one of an item since removed (the contact
// then added again, a new item whose tokens start over).
//
// retry_at is an RFC 3339 time at most 366 days ahead (the item becomes
// Scheduled for it); without it a failure is retried after the engine's
// retry delay (Retrying); "final": true fails the item for good and may not
// be combined with retry_at. Notes are at most 1000 characters.
//
// Decisions for a claim that gets nothing:
//
//   - Nothing is due: 204 No Content, no body. The dialer has nothing to
//     do until contacts are added or retries come due.
//   - Items are due but the pool's in-flight cap is reached (1 for FIFO and
//     LIFO, max_parallel_items for Parallel): 409 Conflict with code
//     AT_CAPACITY: the claim conflicts with the pool's state, and will go
//     through once a lease is settled. Not 429, which a generic client
//     takes for rate limiting and retries on its own schedule; no
//     Retry-After, since when a slot frees depends on the dialer's own
//     settlements. The dialer should settle a lease (or claim with ?wait=)
//     before claiming again.
//   - ?wait= (a Go duration like "5s", or whole seconds; at most 30s) makes
//     the claim wait for an item (long polling) instead of answering 204 or
//     409 at once; when the wait runs out, one last try decides between 200,
//     204 and 409.
//
// A claim whose client is gone gives its lease back (Release: due again at
// once, the attempt not counted) when the server can tell the client does
// not have it: the request's context ended before the answer was written
// (net/http ends it when it reads the end of the connection, or a reset,
// while the claim runs), or writing the answer failed (the connection was
// closed or reset, or the server's write timeout passed). The answer
// carries a Content-Length, so a client that got part of it knows it was
// cut short. The server cannot tell more: a write succeeds once the
// operating system has taken the bytes, before they reach the client, and
// net/http stops watching a connection for its end once it has read the
// first byte of a pipelined request. So the lease of a client that
// vanishes after the answer was written (its host down, a reset arriving
// after the write, a proxy in front of the server that took the answer and
// lost its own client) stands: it expires after the engine's lease timeout
// as a failed attempt, counted and retried after the retry delay, as after
// a dialer's crash. Served behind a wrapper whose writer cannot flush
// (http.TimeoutHandler, a middleware's writer without Unwrap), the server
// learns nothing of the write either: only the ended context gives the
// lease back. A client that got no whole answer to a claim must not dial:
// the contact comes back, at once or when that lease ends.
//
// Rules and campaigns (the API's /rules and /campaigns; [campaign.Rule] and
// [campaign.Campaign] fields, defaults and limits):
//
//	POST   /api/v1/rules                       201 "Rule created successfully", data: rule; Location header
//	GET    /api/v1/rules                       200 page of rules, oldest first; ?page= ?per_page= (≤100, default 15) ?search= ?type=
//	GET    /api/v1/rules/{uuid}                200 the rule
//	PUT    /api/v1/rules/{uuid}                200 "Rule updated successfully"; partial, not retroactive
//	DELETE /api/v1/rules/{uuid}                200 data: null; 409 CONFLICT while a campaign has the rule
//	POST   /api/v1/campaigns                   201 a Draft without pools; body {"name", "rule_uuid"?, "timezone"?}; a status or pools: 422 (see Responses)
//	GET    /api/v1/campaigns                   200 page of campaigns; ?page= ?per_page= ?search= ?status= ("Active" is In Process) ?rule_uuid=
//	GET    /api/v1/campaigns/{uuid}            200 the campaign, with its pool_uuids
//	PUT    /api/v1/campaigns/{uuid}            200 {"name"?, "timezone"?}; the status, the rule and the pools have their own endpoints
//	DELETE /api/v1/campaigns/{uuid}            200 data: null; 409 CONFLICT while In Process or Paused; 409 IN_FLIGHT while a contact two of its pools share is in a call
//	POST   /api/v1/campaigns/{uuid}/start      200 "Campaign is In Process"; also pause, resume, complete, archive
//	POST   /api/v1/campaigns/{uuid}/pools      200 {"pools_attached", "pools_skipped", "pool_uuids_not_found"}; body {"pool_uuids": [...]}
//	DELETE /api/v1/campaigns/{uuid}/pools/{p}  200 {"campaign_uuid", "pool_uuid", "detached"}; 409 IN_FLIGHT while a contact the pool shares with the campaign's other pools is in a call (whatever its status)
//	PUT    /api/v1/campaigns/{uuid}/rule       200 "Rule assigned to campaign", data: campaign_uuid and the rule's fields
//
// Dispatch follows the campaign: a pool attached to a campaign is dialled
// only while that campaign is In Process. A claim on a pool whose campaigns
// are all Draft, Paused, Completed or Archived is a 409 POOL_HELD (items in
// flight still settle). While its campaign runs, the campaign's rule
// governs the pool: max_total_calls is the ceiling of a contact's attempts
// over the campaign's pools (instead of each pool's max_retries + 1), as
// max_calls_per_day is of its calls a day, retry_interval_minutes the delay
// of a retry, and a contact is in one call at a time. A pool has at most
// one running or paused campaign: starting a second one over it is a 409
// CONFLICT. An action the status
// does not allow (pause a Draft) is a 409 WRONG_STATUS, as is attaching
// a pool to a Completed or Archived campaign; attaching an
// inactive pool is a 422 on pool_uuids[i], and one that would leave the
// campaign with more than queue.MaxPoolsPerCampaign (1,000) pools a 422 on
// pool_uuids (the pools attached already, repeated or unknown do not
// count; nothing is attached), as is a request naming more than
// queue.MaxPoolsPerCall (1,000) distinct pools; unknown pools are reported in
// pool_uuids_not_found, not an error. Attach is additive and idempotent.
// The dialer claims with the pool dispatch endpoint above; there is no
// campaign-wide claim over HTTP (queue.Engine.DequeueCampaign is the
// library's).
//
// The do-not-call list, opt-outs and escalations, which a campaign's rule
// applies at dispatch ([campaign.DNCEntry], [campaign.Escalation]):
//
//	POST   /api/v1/dnc                         200 {"contacts_added", "contacts_already_listed"}; body {"contact_uuids": [...]}
//	GET    /api/v1/dnc                         200 page of {"contact_uuid", "added_at"}, oldest first; ?page= ?per_page= (≤100, default 25)
//	GET    /api/v1/dnc/{contact}               200 {"contact_uuid", "do_not_call": true|false}
//	DELETE /api/v1/dnc/{contact}               200 {"contact_uuid", "removed": true|false}
//	POST   /api/v1/contacts/{contact}/opt-out  200 {"contact_uuid", "items_skipped"}; body empty or {}
//	GET    /api/v1/escalations                 200 {"data": [...], "after", "limit", "next_after"}; ?after= ?limit= (1–100, default 100) ?pool_uuid=
//
// The do-not-call list is one list shared by every pool. POST /dnc takes
// 1 to 10,000 contact UUIDs in one transaction; duplicates are folded, and
// contacts on the list already are counted in contacts_already_listed, not
// an error; a bad or nil UUID is a 422 naming its index
// ("contact_uuids[3]"). A contact leaves the list one at a time, by its
// path: DELETE is idempotent (removed: false when it was not on the list).
// GET /dnc/{contact} answers 200 whether or not the contact is listed: a
// dialer may ask before it calls. A contact on the list is never dialled
// by a pool whose rule has dnc_check: dispatch skips its item (Skipped,
// note "do not call"); taking it off the list does not revive the item.
//
// An opt-out is recorded for good and skips, in the same transaction, the
// contact's waiting items in the pools whose rule has remove_on_opt_out
// (Skipped, note "opted out"); items_skipped counts them. A call in
// progress finishes: failed, its item is Skipped instead of retried. Other
// pools keep the contact's items, and skip them if such a rule governs
// them later. Opting out again is harmless (items_skipped 0).
//
// An escalation is recorded once per item, when its failed attempts reach
// the rule's escalation_after_failed_attempts. GET /escalations lists them
// in the order they were recorded, those whose id is above ?after= (0 by
// default), at most ?limit=, of one pool with ?pool_uuid=. next_after is
// the id of the last one listed, or ?after= when none is: a consumer passes
// it back as ?after= to page through them and then to poll for new ones;
// fewer than limit means it has caught up. Escalations outlive their
// items, pools, campaigns and rules: ?pool_uuid= is a filter, never a 404,
// and still finds the escalations of a deleted pool.
//
// # Responses
//
// Success: {"success": true, "message": "...", "data": ...}. Pages are
// {"current_page", "last_page", "per_page", "total", "data": [...]}.
// Timestamps are the reference's: UTC, whole seconds, "2023-11-07T05:31:56Z".
//
// A create or update of a pool may send back the object it read (GET, edit,
// PUT): the resource's read-only fields (uuid, contacts_count, created_at,
// updated_at, status_counts) are accepted and ignored, as are a rule's
// (uuid, created_at, updated_at). A pool's campaigns are accepted only as
// the campaigns it is attached to ([] on a create; entries in any order,
// compared by uuid): other campaigns are a 422 on campaigns (rule
// "read_only") saying that a pool is attached with POST
// /api/v1/campaigns/{uuid}/pools and detached with DELETE …/pools/{pool},
// since a 200 would tell a client that attached or detached this way that
// it did. A campaign's name and status in that list are the campaign's,
// changed with its own endpoints, and may have changed since the pool was
// read: they are ignored, not compared. An update of a
// campaign may send back its read-only fields (uuid, status, rule_uuid,
// pool_uuids, created_at, updated_at) only with the campaign's own values (a UUID in
// any case, a time in any RFC 3339 form of the same second, pool_uuids in
// any order): another value is a 422 naming the field (rule "read_only"),
// whose message says how it changes (the status with POST
// /api/v1/campaigns/{uuid}/start, /pause, /resume, /complete or /archive;
// the rule with PUT /api/v1/campaigns/{uuid}/rule; the pools with POST
// /api/v1/campaigns/{uuid}/pools and DELETE …/pools/{pool}), since a 200
// would tell a client that "paused" a running campaign so that it did,
// while the calls go on. An updated_at that differs means the campaign
// changed since it was read. A create of a campaign takes rule_uuid, and
// makes a Draft without pools: its uuid, created_at and updated_at are
// ignored (the 201 gives the campaign's own), but a status other than
// "Draft" or a pool_uuids that is not empty is a 422 (rule "read_only")
// saying to start the campaign (POST …/start) or attach the pools (POST
// …/pools) after the create: a 201 would tell the client that its
// campaign runs, or draws from those pools, while nothing is dialled.
// The pools are not attached by the create itself: the engine attaches
// them in a transaction of its own, and one that fails (an inactive pool,
// a 422) would leave behind a campaign the client was told was not made.
// Any other
// field the endpoint does not take is a 422 naming it (names match exactly,
// case included): a typo ("max_retry") is an error, not silently dropped.
// So is a field given twice in one object (rule "repeated"): a proxy or a
// log in front of the server may have read the other value; a query
// parameter given twice likewise. A field given
// as null counts as absent ("payload": null is no payload). An endpoint
// that takes no body (a DELETE, a campaign's action, an opt-out, a claim)
// takes an empty one or {}: a field there is a 422 naming it, malformed
// JSON a 400, and nothing changes ({"dry_run": true} on a DELETE deletes
// nothing, as ?dry_run=1 does not).
//
// Errors: {"success": false, "message": "...", "error": {"code", "details",
// "field"}}, field only on 422. The codes (error.code):
//
//	400 INVALID_JSON        empty body (where one is required), malformed JSON, not an object, data after it
//	401 MISSING_AUTH_TOKEN  no bearer token
//	401 INVALID_AUTH_TOKEN  a bearer token that is not the accepted one
//	404 NOT_FOUND           unknown pool, rule or campaign, or contact not in the pool (a malformed UUID in the path names none)
//	404 ROUTE_NOT_FOUND     no such endpoint (a path that is not clean, "//pools", included: no redirect)
//	405 METHOD_NOT_ALLOWED  the path exists, not with this method (Allow header)
//	409 IN_FLIGHT           deleting a pool while one of its items is in flight
//	409 LEASE_LOST          settling with a token that is no longer current
//	409 AT_CAPACITY         claim on a pool whose in-flight cap is reached
//	409 POOL_HELD           claim on a pool whose campaigns are not In Process
//	409 WRONG_STATUS        a campaign action its status does not allow
//	409 CONFLICT            another campaign governs the pool; deleting a rule in use or a running campaign
//	413 PAYLOAD_TOO_LARGE   a body over 1 MiB
//	422 VALIDATION_ERROR    field rules, a value of the wrong JSON type ("max_retries": "3", rule "type"),
//	                        a field the endpoint does not take (rule "unknown"; a member named "" is
//	                        named "body", or the object holding it) or given twice (rule
//	                        "repeated"), a value that is not UTF-8 (rule "utf8"), a campaign's
//	                        read-only field (or a pool's campaigns) changed, or set by a create
//	                        (rule "read_only"): field is the first failing field, details lists
//	                        every one
//	500 OUTCOME_UNKNOWN     the connection to the database failed after the commit was sent: the
//	                        change may have been written (see below; logged as a warning)
//	500 INTERNAL_ERROR      anything else, a panic included (logged, details not shown)
//	503 SERVICE_UNAVAILABLE the server is shutting down
//	503 LOCK_TIMEOUT        a write waited longer than the store's lock timeout for a lock another
//	                        session holds (another server on the PostgreSQL database, a process on
//	                        the SQLite file): nothing written, try again (Retry-After: 1; logged as a
//	                        warning)
//
// Validation comes from poolq itself (pool.CreateParams.Validate and the
// like): a 422 names fields by their JSON names, and lists all of them in
// details ("name: must be between 3 and 255 characters; type: must be one of
// FIFO, LIFO, Parallel"). One 422 reports every failing field at once: the
// fields of the wrong type, unknown or not UTF-8 beside the rules' failures
// on the fields that decoded ({"name": "ab", "max_retries": "3"} names both),
// each field once (a value of the wrong type is not also "required"). An
// element of a list of UUIDs is named by its index, be it a malformed UUID
// or not a string at all ("contact_uuids[1]: must be a string, not number");
// past 20 bad elements, the rest are counted against the list. A list of
// more than 10,000 elements (MaxListElements, repeats counted) is a 422 on
// the list, its elements not looked at. A 422 lists
// at most 100 failing fields; details then ends with the number of the
// others ("…; 4180 more failures not listed"). A value echoed in a message
// is cut to 40 characters, a name the client chose (an unknown field or
// parameter; a 404's path, a 405's method) to 200 bytes, each marked with
// its length: a large request does not buy a larger answer.
// Query parameters are validated the same way, in the same 422
// (?per_page=500 is a 422 on per_page; ?page=0&type=Random names both, and a
// claim's bad ?wait= is named beside its body's fields). A parameter that is
// not URL-encoded (a bad %-escape, a ";"), or that the endpoint does not
// take (rule "unknown": ?stauts=, ?Status=; names match exactly, as a
// body's fields do), is a 422 naming it too, never dropped: a listing is
// not answered without its filter. That holds on every endpoint, those
// that take no parameter included (all but the listings, GET
// /escalations and the claim's ?wait=): ?priority=5 on POST …/contacts,
// whose priority is the body's, or ?dry_run=1 on a DELETE, is a 422 and
// changes nothing, where ignoring it would do for real what the client
// asked otherwise. So is a query of more than 10,000 parameters (a 422 on
// "query").
//
// A request that fails writes nothing, but for the expired leases a
// settlement finds (see above) and a 500 OUTCOME_UNKNOWN: bodies are
// decoded and validated before the engine is called, and every engine call
// is one transaction, whose outcome a store over a network (PostgreSQL)
// may fail to learn when the connection drops after the commit was sent.
// The change may then have been written or not: read it back before trying
// again. A claim answered so may have stood: the engine then gives it back,
// unattempted, as soon as the database answers (a lease it cannot give back
// before its end expires as a failed attempt); a settlement answered so may have
// gone through, and a complete, fail or release tried again after it did
// answers 409 LEASE_LOST: read the item to learn which.
//
// # Caveats
//
//   - page is at most 2147483647 (pool.MaxPage; a 422 beyond), the engine's
//     bound, which keeps a page's offset from overflowing.
//   - Text holding a NUL character or invalid UTF-8 is refused with a 422
//     (package validate's Text rule), as every text entering poolq is. In a
//     body, bytes that are not UTF-8 are refused before decoding (which
//     would put U+FFFD in their place), naming the body's field that holds
//     them: "contacts" for a byte in one of the contacts, a key's own
//     name (shown with U+FFFD) for a byte in a key. So is a \u escape of
//     half a surrogate pair ("\ud800" alone), which decoding would also
//     turn into U+FFFD; a payload is opaque, and kept as sent (handed
//     back compacted, see above). Query
//     parameters are the engine's to check (?search=%FF is a 422 on search).
package main

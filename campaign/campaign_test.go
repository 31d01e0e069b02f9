package campaign_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/stretchr/testify/require"
)

func TestStatus_After(t *testing.T) {
	t.Parallel()
	allowed := map[campaign.Status]map[campaign.Action]campaign.Status{
		campaign.Draft:     {campaign.Start: campaign.InProcess},
		campaign.InProcess: {campaign.Pause: campaign.Paused, campaign.Complete: campaign.Completed},
		campaign.Paused:    {campaign.Resume: campaign.InProcess, campaign.Complete: campaign.Completed},
		campaign.Completed: {campaign.Archive: campaign.Archived},
		campaign.Archived:  {},
	}
	for _, from := range campaign.Statuses() {
		for _, a := range []campaign.Action{campaign.Start, campaign.Pause, campaign.Resume, campaign.Complete, campaign.Archive} {
			got, err := from.After(a)
			if want, ok := allowed[from][a]; ok {
				require.NoError(t, err, "%s %s", a, from)
				require.Equal(t, want, got, "%s %s", a, from)
				continue
			}
			require.ErrorIs(t, err, campaign.ErrWrongStatus, "%s %s", a, from)
			require.Equal(t, from, got)
		}
	}
	require.True(t, campaign.InProcess.Dispatches())
	for _, s := range []campaign.Status{campaign.Draft, campaign.Paused, campaign.Completed, campaign.Archived} {
		require.False(t, s.Dispatches(), s)
	}
	require.True(t, campaign.Paused.Governs())
	require.True(t, campaign.InProcess.Governs())
	require.False(t, campaign.Draft.Governs())
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]campaign.Status{
		"Draft": campaign.Draft, "in process": campaign.InProcess, "Active": campaign.InProcess,
		"ACTIVE": campaign.InProcess, "paused": campaign.Paused, "Completed": campaign.Completed, "archived": campaign.Archived,
	} {
		got, ok := campaign.ParseStatus(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "Running", "InProcess", "Done"} {
		_, ok := campaign.ParseStatus(in)
		require.False(t, ok, in)
	}
	require.True(t, campaign.InProcess.Valid())
	require.False(t, campaign.Status("Active").Valid(), "Active is an input spelling, never stored")
}

func TestNew(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	c, err := campaign.New(id, campaign.CreateParams{Name: " Spring drive ", TimeZone: "Europe/Paris", RuleUUID: &ruleID}, t0)
	require.NoError(t, err)
	require.Equal(t, campaign.Campaign{UUID: id, Name: "Spring drive", Status: campaign.Draft, RuleUUID: &ruleID,
		TimeZone: "Europe/Paris", CreatedAt: t0, UpdatedAt: t0}, c)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.JSONEq(t, `{"uuid":"`+id.String()+`","name":"Spring drive","status":"Draft",
		"rule_uuid":"7a1e7c2e-5b1f-4c7e-9a0b-1c2d3e4f5a6b","timezone":"Europe/Paris","pool_uuids":[],
		"created_at":"2023-11-07T05:31:56Z","updated_at":"2023-11-07T05:31:56Z"}`, string(b))

	_, err = campaign.New(id, campaign.CreateParams{Name: "x", TimeZone: "Mars/Base", RuleUUID: &uuid.Nil}, t0)
	require.Equal(t, []string{"name:length", "rule_uuid:required", "timezone:format"}, fields(t, err))

	out, changed, err := campaign.UpdateParams{Name: ptr("Autumn drive")}.Apply(c)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, "Autumn drive", out.Name)
	_, _, err = campaign.UpdateParams{TimeZone: ptr("Local")}.Apply(c)
	require.Equal(t, []string{"timezone:format"}, fields(t, err))
}

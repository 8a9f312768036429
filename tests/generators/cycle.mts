// The governed cycle through types that openapi-typescript generated from /openapi.json
// (./vesanor.d.ts) and openapi-fetch. Run by tests/test_generated_clients.py: compiled with
// `tsc --strict`, then run with node against a live mock. No casts: a free-form object
// (arguments, output) takes any members, and every answer has its generated type.
import createClient from "openapi-fetch";
import type { components, paths } from "./vesanor.js";

type Schemas = components["schemas"];
declare const process: { argv: string[] }; // node's, without @types/node

const [baseUrl, apiKey, controlToken] = process.argv.slice(2);
const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });
const control = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${controlToken}` },
});

function fail(what: string, body: unknown): never {
  throw new Error(`${what}: ${JSON.stringify(body)}`);
}

const creation: Schemas["CreateSessionRequest"] = {
  agent: "refund-bot",
  session_id: "generated-ts",
  environment: "production",
  holder_id: "worker-a",
  metadata: { ticket: "T-1001", attempts: 1 },
};
const created = await api.POST("/api/v1/replay/sessions", { body: creation });
if (!created.data) fail("create", created.error);
const sid = created.data.session.session_id;
const fence = created.data.lease.fence_token;
const path = { sid };

const preflightBody: Schemas["PreflightRequest"] = {
  fence_token: fence,
  expected_state_version: 0,
  request: { tools: ["verify_customer", "issue_refund"] },
};
const prepared = await api.POST("/api/v1/replay/sessions/{sid}/preflight", {
  params: { path },
  body: preflightBody,
});
if (!prepared.data) fail("preflight", prepared.error);
const preflight: Schemas["PreflightResponse"] = prepared.data;

const proposal: Schemas["ProposalsRequest"] = {
  prepared_request_id: preflight.prepared_request_id,
  fence_token: fence,
  response: {
    tool_calls: [{ id: "call-1", name: "verify_customer", arguments: { email: "ana@example.com" } }],
  },
};
const judged = await api.POST("/api/v1/replay/sessions/{sid}/proposals", {
  params: { path },
  body: proposal,
});
if (!judged.data) fail("proposals", judged.error);
const verdict: Schemas["ProposalsResponse"] = judged.data;
const pending = verdict.calls[0]?.pending_call_id;
if (!pending) fail("no pending call", verdict);

const receiptBody: Schemas["ReceiptsRequest"] = {
  pending_call_id: pending,
  fence_token: fence,
  outcome: "success",
  output: { verified: true, customer_id: "c-42" },
};
const receipted = await api.POST("/api/v1/replay/sessions/{sid}/receipts", {
  params: { path },
  body: receiptBody,
});
if (!receipted.data) fail("receipts", receipted.error);
const receipt: Schemas["ReceiptsResponse"] = receipted.data;

const loaded = await api.GET("/api/v1/replay/sessions/{sid}", { params: { path } });
if (!loaded.data) fail("load", loaded.error);
const session: Schemas["Session"] = loaded.data.session;

const reused = await api.POST("/api/v1/replay/sessions/{sid}/proposals", {
  params: { path },
  body: proposal,
});
if (!reused.error) fail("the reused prepared request was accepted", reused.data);
const envelope: Schemas["ErrorEnvelope"] = reused.error;

const journal = await control.GET("/_mock/journal", { params: { query: { endpoint: "proposals" } } });
if (!journal.data) fail("journal", journal.error);
const entries: Schemas["MockJournalEntry"][] = journal.data.entries;

console.log(
  JSON.stringify({
    created: created.response.status,
    decision: verdict.decision,
    committed: receipt.committed,
    state_version: session.state_version,
    phase: session.phase.current,
    conflict: reused.response.status,
    code: envelope.error.code,
    request_id: envelope.error.request_id,
    journaled_proposals: entries.map((entry) => entry.status),
  }),
);

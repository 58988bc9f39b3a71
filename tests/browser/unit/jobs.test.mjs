// The fleet view's agent version and update line (static/jobs.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { agentVersion, updateClass, updateLine } from "../../../crates/controller/static/jobs.js";

test("the shadow's agent version wins over the status's, and none is empty", () => {
  assert.equal(agentVersion({ version: "0.1.0", reported: { agent: { version: "0.2.0" } } }), "0.2.0");
  assert.equal(agentVersion({ version: "0.1.0", reported: {} }), "0.1.0");
  assert.equal(agentVersion({}), "");
  assert.equal(agentVersion(null), "");
});

test("an update in progress names its job, target version and step", () => {
  const r = { reported: { agent: { update: { job: "upd-1", status: "IN_PROGRESS", step: "downloading", to: "0.2.0" } } } };
  assert.equal(updateLine(r), "update upd-1 to 0.2.0: IN_PROGRESS (downloading)");
  assert.equal(updateClass(r), "pill");
});

test("a finished update says how it ended, a failure with its reason", () => {
  const ok = { reported: { agent: { update: { job: "upd-1", status: "SUCCEEDED" } } } };
  assert.equal(updateLine(ok), "update upd-1 SUCCEEDED");
  assert.equal(updateClass(ok), "pill pill-ok");
  const bad = { reported: { agent: { update: { job: "upd-2", status: "FAILED", detail: "SHA-256 mismatch" } } } };
  assert.equal(updateLine(bad), "update upd-2 FAILED: SHA-256 mismatch");
  assert.equal(updateClass(bad), "pill pill-bad");
});

test("no update job means no line", () => {
  assert.equal(updateLine({ reported: { agent: { version: "0.1.0" } } }), "");
  assert.equal(updateLine({}), "");
  assert.equal(updateClass({}), "");
});

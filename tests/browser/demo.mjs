// Shared helpers for the browser test and the teleop benchmark: start
// `gopigo demo` in a fresh data dir, launch Debian's Chromium through
// playwright-core, talk to a simulated robot's debug endpoint.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const GOPIGO = process.env.GOPIGO_BIN || path.join(ROOT, "target", "debug", "gopigo");
export const ARTIFACTS = path.join(ROOT, "tests", "artifacts");
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(what, fn, timeoutMs = 15000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
}

/** Starts `gopigo demo` and resolves once it prints its URL. */
export async function startDemo(extraArgs = []) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "gopigo-demo-"));
  const proc = spawn(GOPIGO, ["demo", "--data-dir", dataDir, "--port", "0", ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout.on("data", (d) => { output += d; });
  proc.stderr.on("data", (d) => { output += d; });
  const exited = new Promise((res) => proc.on("exit", (code, sig) => res({ code, sig })));
  await until("the demo to print its URL", async () => {
    if (proc.exitCode !== null) throw new Error(`gopigo demo exited early:\n${output}`);
    return output.includes("Stop with Ctrl-C.");
  }, 180000, 200);
  const info = JSON.parse(readFileSync(path.join(dataDir, "demo.json"), "utf8"));
  // Sign in from the URL the demo printed, as a user would.
  const m = /(http:\/\/\S+\/)\?token=([A-Za-z0-9._~-]+)/.exec(output);
  if (!m) throw new Error(`gopigo demo printed no sign-in URL:\n${output}`);
  return {
    dataDir, proc, info, exited,
    url: m[0],           // the sign-in URL: each new browser context starts here
    cleanUrl: m[1],      // the dashboard itself
    token: m[2],
    output: () => output,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGINT");
      return Promise.race([exited, sleep(20000).then(() => { proc.kill("SIGKILL"); return { code: null, sig: "timeout" }; })]);
    },
  };
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function sim(demo, thing) {
  const r = await fetch(demo.info.robots[thing].sim_url);
  return r.json();
}

export async function launch() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

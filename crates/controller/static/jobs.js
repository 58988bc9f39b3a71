// Agent version and over-the-air update progress of one robot, for the
// fleet view. The agent reports both in its shadow (crates/agent/src/update.rs):
//   reported.agent = {version, update?: {job, status, step?, to?, detail?}}
// and its retained status carries `version` too (robot.version here).
// view.js shows both in each robot's row and in the selected robot's head.

const ACTIVE = new Set(["QUEUED", "IN_PROGRESS"]);

/** The agent version to show: the shadow's, else the status's. */
export function agentVersion(robot) {
  const a = robot && robot.reported && robot.reported.agent;
  return (a && a.version) || (robot && robot.version) || "";
}

/** One line about the robot's last update job, or "" when there is none. */
export function updateLine(robot) {
  const a = robot && robot.reported && robot.reported.agent;
  const u = a && a.update;
  if (!u || !u.job) return "";
  if (ACTIVE.has(u.status)) {
    const step = u.step ? ` (${u.step})` : "";
    const to = u.to ? ` to ${u.to}` : "";
    return `update ${u.job}${to}: ${u.status}${step}`;
  }
  const detail = u.detail ? `: ${u.detail}` : "";
  return `update ${u.job} ${u.status}${detail}`;
}

/** CSS class for the update line: ok, bad or busy. */
export function updateClass(robot) {
  const u = robot && robot.reported && robot.reported.agent && robot.reported.agent.update;
  if (!u) return "";
  if (u.status === "SUCCEEDED") return "pill pill-ok";
  if (ACTIVE.has(u.status)) return "pill";
  return "pill pill-bad";
}

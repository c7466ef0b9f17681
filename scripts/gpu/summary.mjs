// Summarises a vitest JSON report (scripts/gpu/suite.sh): the counts, then one line per failing
// test (file > name: first line of its error) and per file that failed to run, then how many
// failures name each op "not supported on device gpu" or "not ported to device gpu".
// Usage: node scripts/gpu/summary.mjs suite.json [more.json ...] (several reports are added up)
import { readFileSync } from "node:fs";
import { relative } from "node:path";

const reports = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, "utf8")));
const total = (key) => reports.reduce((n, r) => n + (r[key] ?? 0), 0);
const report = {
  testResults: reports.flatMap((r) => r.testResults),
  numTotalTests: total("numTotalTests"), numPassedTests: total("numPassedTests"), numFailedTests: total("numFailedTests"),
  numPendingTests: total("numPendingTests"), numTodoTests: total("numTodoTests"), numTotalTestSuites: total("numTotalTestSuites"),
};
const firstLine = (m) => String(m ?? "").split("\n").find((l) => l.trim() !== "")?.trim().slice(0, 300) ?? "";
const lines = [], causes = new Map();
for (const file of report.testResults) {
  const name = relative(process.cwd(), file.name);
  const failed = file.assertionResults.filter((t) => t.status === "failed");
  if (file.status === "failed" && failed.length === 0) lines.push(`${name} (file): ${firstLine(file.message)}`);
  for (const t of failed) {
    const msg = firstLine(t.failureMessages?.[0]);
    lines.push(`${name} > ${t.fullName}: ${msg}`);
    const m = /(\w+)(?: of dtype \w+)? is not (?:supported on|ported to) device gpu/.exec(msg);
    const key = m ? `not on gpu: ${m[1]}` : "other";
    causes.set(key, (causes.get(key) ?? 0) + 1);
  }
}
console.log(`tests: ${report.numTotalTests} total, ${report.numPassedTests} passed, ${report.numFailedTests} failed, ` +
  `${report.numPendingTests + (report.numTodoTests ?? 0)} skipped; files: ${report.numTotalTestSuites} suites, ` +
  `${report.testResults.filter((f) => f.status === "failed").length} files with failures`);
console.log("\nfailures by cause:");
for (const [k, n] of [...causes].sort((a, b) => b[1] - a[1])) console.log(`  ${n}\t${k}`);
console.log("\nfailing tests:");
for (const l of lines) console.log(l);

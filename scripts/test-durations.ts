/**
 * Rewrites `test/durations.json` (what `test/support/sequencer.ts` orders files by on a clean clone)
 * from a vitest JSON report of a full run:
 *
 *   npm test -- --reporter=default --reporter=json --outputFile.json=/tmp/vitest.json
 *   npm run test:durations -- /tmp/vitest.json
 *
 * Seconds per file, rounded to a tenth. Every file is listed, the shortest as 0: the sequencer counts a
 * file it does not find as a long unknown one (a new file) and would start it among the first.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const report = process.argv[2];
if (!report) {
  process.stderr.write("usage: npm run test:durations -- <vitest JSON report>\n");
  process.exit(2);
}
const root = path.resolve(import.meta.dirname, "..");
const { testResults } = JSON.parse(readFileSync(report, "utf8")) as {
  testResults: { name: string; startTime: number; endTime: number }[];
};
const durations: Record<string, number> = {};
for (const file of testResults.sort((a, b) => a.name.localeCompare(b.name))) {
  const seconds = Math.round((file.endTime - file.startTime) / 100) / 10;
  durations[path.relative(root, file.name)] = seconds;
}
writeFileSync(path.join(root, "test/durations.json"), `${JSON.stringify(durations, null, 2)}\n`);
process.stdout.write(`test/durations.json: ${Object.keys(durations).length} files\n`);

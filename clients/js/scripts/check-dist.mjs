// check-dist.mjs — rebuilds dist/ and fails if it differs from what is committed (run by CI):
// the server embeds dist/querycache.js, so the committed file must be the build of the committed source.

import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = ["dist/querycache.js", "dist/querycache.d.ts"];

execFileSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
let failed = false;
for (const file of files) {
  try {
    execFileSync("git", ["ls-files", "--error-unmatch", file], { cwd: root, stdio: "ignore" });
  } catch {
    console.error(`check-dist: ${file} is not committed`);
    failed = true;
    continue;
  }
  try {
    execFileSync("git", ["diff", "--quiet", "HEAD", "--", file], { cwd: root, stdio: "inherit" });
  } catch {
    console.error(`check-dist: ${file} differs from the committed one; run \`npm run build\` in clients/js and commit dist/`);
    execFileSync("git", ["--no-pager", "diff", "--stat", "HEAD", "--", file], { cwd: root, stdio: "inherit" });
    failed = true;
  }
}
if (failed) process.exit(1);
console.log("check-dist: dist/ matches the committed build");

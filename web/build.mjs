// Builds the app into dist/: index.html, app.js (an ES module bundle,
// minified, with @chalktalk/client from ../clients/js/src), the chunks it
// imports lazily (hls.js) and app.css.
// `node build.mjs` (npm run build); scripts/build-web.sh runs it.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.ts")],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  // hls.js is imported lazily (src/hlsplayer.ts): its own chunk.
  splitting: true,
  outdir: out,
  entryNames: "app",
  chunkNames: "chunk-[hash]",
  alias: { "@chalktalk/client": join(here, "..", "clients", "js", "src", "index.ts") },
  // The client's own dependency (@msgpack/msgpack) from web/node_modules.
  nodePaths: [join(here, "node_modules")],
  logLevel: "warning",
});
copyFileSync(join(here, "src", "app.css"), join(out, "app.css"));
copyFileSync(join(here, "index.html"), join(out, "index.html"));
console.log("built", out);

import { writeAtomically } from "../writers/atomic-file.js";
import type { FitManifest } from "./manifest.js";
import { fitChartSvg } from "./svg.js";

/** `model.fit.json` -> `model.fit.svg`; any other name gets `.svg` appended. */
function chartPathFor(jsonPath: string): string {
  return jsonPath.endsWith(".json") ? `${jsonPath.slice(0, -".json".length)}.svg` : `${jsonPath}.svg`;
}

/** Writes the manifest as JSON at `jsonPath` and its chart beside it; returns both paths. */
export async function writeFitFiles(manifest: FitManifest, jsonPath: string): Promise<{ json: string; svg: string }> {
  const svg = chartPathFor(jsonPath);
  await writeAtomically(jsonPath, async (handle) => {
    await handle.writeFile(`${JSON.stringify(manifest, null, 2)}\n`, "utf8");
  });
  await writeAtomically(svg, async (handle) => {
    await handle.writeFile(fitChartSvg(manifest), "utf8");
  });
  return { json: jsonPath, svg };
}

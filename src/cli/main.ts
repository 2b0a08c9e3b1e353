import { Command, CommanderError } from "commander";
import { UserError } from "../errors.js";
import { VERSION } from "../version.js";
import { convertCommand } from "./convert-command.js";
import { fitCommand } from "./fit-command.js";
import { inspectCommand } from "./inspect-command.js";
import { manifestCommand } from "./manifest-command.js";
import { planCommand } from "./plan-command.js";
import { runCommand } from "./run-command.js";

const EXIT_OK = 0;
const EXIT_INTERNAL = 1;
const EXIT_USER_ERROR = 2;

/** Runs the CLI and resolves to the process exit code; never calls process.exit itself. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command("edgequant")
    .description("Turn Hugging Face safetensors checkpoints into GGUF, ONNX and MLX models for phones, laptops and small boards.")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .addCommand(convertCommand().exitOverride())
    .addCommand(inspectCommand().exitOverride())
    .addCommand(fitCommand().exitOverride())
    .addCommand(planCommand().exitOverride())
    .addCommand(runCommand().exitOverride())
    .addCommand(manifestCommand().exitOverride());
  // Ctrl-C: exit through 'exit' handlers, which remove partial output files.
  process.once("SIGINT", () => process.exit(130));
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // `--help`, `help` and `--version` succeed (exit code 0); a bare `edgequant` prints the help but did nothing.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USER_ERROR;
    }
    if (error instanceof UserError) {
      process.stderr.write(`error: ${error.message}\n`);
      return EXIT_USER_ERROR;
    }
    process.stderr.write(`internal error (please report it): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_INTERNAL;
  }
}

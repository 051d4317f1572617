#!/usr/bin/env node
/**
 * The `mbpo-arm` command. Each subcommand's body lives in its own module; this file only parses
 * flags, builds the config and turns errors into one-line messages.
 */
import { resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { describeArm, formatArmDescription } from "../app/describe.js";
import { type Config, defaultConfig, loadConfig, withOverrides } from "../config/config.js";
import { createPolicy } from "../control/policies/index.js";
import { defaultRunDir } from "../data/transition-log.js";
import { REALITY_PRESET_NAMES } from "../drivers/sim-reality.js";
import type { NodeLearnOptions } from "../ros/node.js";
import { resolveDataPath } from "../util/paths.js";
import { runSimBenchmark } from "./bench-sim-command.js";
import { runBootstrapCommand } from "./bootstrap-command.js";
import { registerCalibrateCommand } from "./calibrate-command.js";
import { runDynamicsCommand } from "./dynamics-command.js";
import { baudRate, registerDynamixelCommand } from "./dynamixel-command.js";
import { runEnvServe } from "./env-command.js";
import { runIdentifyCommand } from "./identify-command.js";
import { runLogSummary } from "./log-command.js";
import { closeLogger, createLogger, isLoggerClosed, type Logger } from "./logger.js";
import { runNodeCommand } from "./node-command.js";
import { runCommand } from "./run-command.js";
import { formatTrainSummary, trainCommand } from "./train-command.js";

const REALITY_HELP = `sim: the twin's reality gap (${REALITY_PRESET_NAMES.join(" | ")}; default none: exactly the URDF), drawn from the seed; sim.reality in the params file sets its ranges`;

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

function collectParam(value: string, previous: Record<string, unknown>): Record<string, unknown> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  const raw = value.slice(eq + 1);
  let parsed: unknown = raw;
  if (raw === "true" || raw === "false") parsed = raw === "true";
  else if (raw.trim() !== "" && Number.isFinite(Number(raw))) parsed = Number(raw);
  return { ...previous, [value.slice(0, eq)]: parsed };
}

/** `--xacro-arg name:=value` (xacro's own spelling; name=value is taken too). */
function collectXacroArg(value: string, previous: Record<string, string>): Record<string, string> {
  const m = /^([A-Za-z_][A-Za-z0-9_]*):?=(.*)$/.exec(value);
  if (m === null) throw new InvalidArgumentError(`expected name:=value, got "${value}"`);
  return { ...previous, [m[1]]: m[2] };
}

interface CommonFlags {
  config?: string;
  param: Record<string, unknown>;
  xacroArg: Record<string, string>;
  packagePath: string[];
  toolFrame?: string;
  logFile?: string | false;
  verbose?: boolean;
  json?: boolean;
}

/** Flags every robot-facing command shares. */
function withCommonFlags(cmd: Command): Command {
  return cmd
    .option(
      "--config <file>",
      "ROS 2 parameter file (default: the built-in defaults, as in config/mbpo_arm.yaml)",
    )
    .option(
      "-p, --param <key=value>",
      "override one setting, e.g. -p safety.effort_scale=0.5 (repeatable)",
      collectParam,
      {},
    )
    .option(
      "--xacro-arg <name:=value>",
      "an argument of a .xacro description, as xacro takes it (repeatable)",
      collectXacroArg,
      {},
    )
    .option(
      "--package-path <dir>",
      "where $(find pkg) and package://pkg look first: a package or a folder of packages (repeatable)",
      (dir: string, previous: string[]) => [...previous, dir],
      [],
    )
    .option(
      "--tool-frame <link>",
      "the end-effector link (default: end_effector, else the last link of the longest chain)",
    )
    .option("--log-file <file>", "JSON-lines log file (default: ~/.mbpo-arm/log/<command>-<time>.jsonl)")
    .option("--no-log-file", "do not write a log file")
    .option("-v, --verbose", "debug output on the console");
}

/**
 * The one place settings are merged, in this order of precedence: the built-in defaults < the
 * params file (--config) < each `-p key=value` < the command's own flags. A flag that was not given
 * is undefined in `flagSettings` and overrides nothing (spreading the flags over the `-p` values
 * once dropped every `-p` whose key also has a flag).
 */
export function buildConfig(flags: CommonFlags, flagSettings: Record<string, unknown>): Config {
  const base = flags.config !== undefined ? loadConfig(flags.config) : defaultConfig();
  const withParams = withOverrides(base, flags.param, "-p");
  const description: Record<string, unknown> = {
    xacro_args:
      Object.keys(flags.xacroArg ?? {}).length > 0
        ? { ...withParams.xacro_args, ...flags.xacroArg }
        : undefined,
    package_path:
      (flags.packagePath ?? []).length > 0
        ? [...flags.packagePath, ...(withParams.package_path ?? [])]
        : undefined,
    tool_frame: flags.toolFrame,
  };
  const given = Object.fromEntries(
    Object.entries({ ...description, ...flagSettings }).filter(([, v]) => v !== undefined),
  );
  return withOverrides(withParams, given, "command line");
}

function startLogging(flags: CommonFlags, command: string): Logger {
  const { logger, file } = createLogger({
    consoleLevel: flags.verbose ? "debug" : flags.json ? "warn" : "info",
    file: flags.logFile === false ? null : flags.logFile,
    command,
  });
  if (file !== null) logger.debug(`log file: ${file}`);
  return logger;
}

/**
 * Ctrl-C asks the running command to stop cleanly (finish the tick, stop the driver, write what
 * was measured); a second Ctrl-C exits at once.
 */
function stopOnSignals(logger: Logger): AbortSignal {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    // The command has finished and its log is closed: nothing is left to stop.
    if (isLoggerClosed(logger)) process.exit(130);
    if (controller.signal.aborted) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    logger.warn(`${signal}: stopping safely (press Ctrl-C again to exit at once)`);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return controller.signal;
}

/** What `run` and `train` over ROS pass to the node: it starts at once and ends when done. */
function rosCommon(logger: Logger, signal: AbortSignal, defaults: Config | undefined) {
  return {
    driver: "ros2" as const,
    policy: "pd",
    episodes: 0,
    autostart: true,
    exitWhenFinished: true,
    argv: process.argv,
    logger,
    signal,
    ...(defaults !== undefined ? { defaults } : {}),
  };
}

/** The learn flags `train` and `node --mode learn` share, as the node's learn options. */
function learnOptions(flags: Record<string, unknown>): NodeLearnOptions {
  return {
    algo: flags.algo as string | undefined,
    profile: flags.profile as string | undefined,
    steps: flags.steps as number | undefined,
    out: flags.out !== undefined ? resolve(flags.out as string) : undefined,
    resume: flags.resume !== undefined ? resolve(flags.resume as string) : undefined,
    evalEvery: flags.evalEvery as number | undefined,
    evalEpisodes: flags.evalEpisodes as number | undefined,
    checkpointEvery: flags.checkpointEvery as number | undefined,
    hp: (flags.hp as Record<string, unknown> | undefined) ?? {},
    tfBackend: flags.tfBackend as string | undefined,
    tfThreads: flags.tfThreads as number | undefined,
    bootstrap:
      flags.bootstrap === undefined
        ? undefined
        : {
            file: flags.bootstrap as string,
            jointStatesTopic: flags.jointStates as string | undefined,
            commandsTopic: flags.commands as string | undefined,
          },
    transitionLog: flags.transitionLog !== false,
  };
}

const program = new Command();
program
  .name("mbpo-arm")
  .description("Teach a torque-controlled robot arm with Model-Based Policy Optimization")
  .showHelpAfterError("(run with --help for usage)");

withCommonFlags(
  program
    .command("run")
    .description("run episodes of a task with a fixed policy, through the control loop and safety filter")
    .addOption(new Option("--driver <name>", "robot driver").choices(["sim", "ros2", "dynamixel"]))
    .option("--task <name>", "task (reach)")
    .option("--policy <name>", "zero | random | pd | excite (sinusoids for `identify`)", "pd")
    .option("--episodes <n>", "number of episodes", integer("--episodes", 1), 5)
    .option("--seed <n>", "random seed", integer("--seed", 0))
    .option("--urdf <file>", "robot description (default: urdf/arm.urdf)")
    .option("--realtime", "pace the simulator to wall-clock time")
    .option("--reality <preset>", REALITY_HELP)
    .option("--port <device>", "dynamixel: serial device of the servo bus (default /dev/ttyUSB0)")
    .option("--baud <n>", "dynamixel: bus baud rate (default 1000000)", baudRate)
    .option("--calibration <file>", "dynamixel: servo calibration (default calibration/arm.yaml)")
    .option("--no-gravity-compensation", "do not add gravity compensation to commands")
    .option("--json", "one JSON line per episode and a summary line on stdout")
    .option("--out <dir>", "run directory for transitions.mcap (default: ~/.mbpo-arm/runs/run-<time>/)")
    .option("--no-transition-log", "do not write transitions.mcap"),
).action(async (flags) => {
  const logger = startLogging(flags, "run");
  const signal = stopOnSignals(logger);
  try {
    const config = buildConfig(flags, {
      driver: flags.driver,
      "task.name": flags.task,
      seed: flags.seed,
      urdf: flags.urdf,
      "sim.realtime": flags.realtime,
      "sim.reality.preset": flags.reality,
      "dynamixel.port": flags.port,
      "dynamixel.baud": flags.baud,
      "dynamixel.calibration": flags.calibration,
      gravity_compensation: flags.gravityCompensation === false ? false : undefined,
    });
    const outDir = flags.transitionLog === false ? undefined : resolve(flags.out ?? defaultRunDir("run"));
    if (config.driver === "ros2") {
      // A ROS arm is driven by the ROS node (services, e-stop, diagnostics): run is its run mode.
      const outcome = await runNodeCommand({
        ...rosCommon(logger, signal, config),
        mode: "run",
        policy: flags.policy,
        episodes: flags.episodes,
        outDir,
      });
      if (outcome.faulted) process.exitCode = 3;
      return;
    }
    const summary = await runCommand({
      config,
      episodes: flags.episodes,
      json: flags.json === true,
      logger,
      signal,
      outDir,
      policy: (stack) =>
        createPolicy(flags.policy, {
          task: stack.task,
          model: stack.model,
          seed: config.seed,
          pd: { kp: stack.gains.resetKp, kd: stack.gains.resetKd },
        }),
    });
    if (summary.fault !== undefined) process.exitCode = 3;
  } finally {
    await closeLogger(logger);
  }
});

const envCommand = program
  .command("env")
  .description("the robot as a step/reset environment for any learner (JSON lines)");
withCommonFlags(
  envCommand
    .command("serve")
    .description(
      "serve spec/reset/step/reward/close as JSON lines on stdin/stdout (or a TCP port): one step is one control period of the loop `run` uses, safety filter included",
    )
    .addOption(new Option("--driver <name>", "robot driver").choices(["sim", "ros2", "dynamixel"]))
    .option("--task <name>", "task (reach)")
    .option("--seed <n>", "episode seed until a reset names one", integer("--seed", 0))
    .option("--urdf <file>", "robot description (default: urdf/arm.urdf)")
    .option("--realtime", "pace the simulator to wall-clock time, as a real arm")
    .option("--reality <preset>", REALITY_HELP)
    .option("--no-gravity-compensation", "do not add gravity compensation to commands")
    .option(
      "--port <n>",
      "serve on this local TCP port instead of stdin/stdout (0: any free port); a servo bus's serial device is -p dynamixel.port=DEVICE",
      integer("--port", 0),
    )
    .option("--host <address>", "address to listen on with --port", "127.0.0.1")
    .option("--max-line-bytes <n>", "longest request line accepted", integer("--max-line-bytes", 1024)),
).action(async (flags) => {
  // stdout carries the protocol: the console log stays on stderr.
  const logger = startLogging(flags, "env-serve");
  const signal = stopOnSignals(logger);
  try {
    const config = buildConfig(flags, {
      driver: flags.driver,
      "task.name": flags.task,
      seed: flags.seed,
      urdf: flags.urdf,
      "sim.realtime": flags.realtime,
      "sim.reality.preset": flags.reality,
      gravity_compensation: flags.gravityCompensation === false ? false : undefined,
    });
    await runEnvServe({
      config,
      port: flags.port,
      host: flags.host,
      maxLineBytes: flags.maxLineBytes,
      logger,
      signal,
    });
  } finally {
    await closeLogger(logger);
  }
});

withCommonFlags(
  program
    .command("train")
    .description(
      "learn a task with MBPO (or SAC): episodes on the robot, learning in a worker thread while the arm is held; writes a run directory",
    )
    .addOption(new Option("--driver <name>", "robot driver").choices(["sim", "ros2", "dynamixel"]))
    .option("--task <name>", "task (reach)")
    .option("--steps <n>", "real steps to collect (with --resume: a new target)", integer("--steps", 1))
    .option("--seed <n>", "random seed (default: the config's seed)", integer("--seed", 0))
    .option("--out <dir>", "run directory: metrics.csv, summary.json, curve.svg, config, checkpoint/")
    .addOption(new Option("--algo <name>", "learner").choices(["mbpo", "sac"]).default("mbpo"))
    .option("--resume <dir>", "continue the interrupted run in <dir> from its checkpoint")
    .option("--eval-every <k>", "evaluate after every k-th episode", integer("--eval-every", 1), 5)
    .option("--eval-episodes <m>", "episodes per evaluation (mean action)", integer("--eval-episodes", 0), 10)
    .option(
      "--checkpoint-every <k>",
      "checkpoint after every k-th episode",
      integer("--checkpoint-every", 1),
      10,
    )
    .option(
      "--tf-backend <name>",
      "force a TensorFlow.js backend: node-gpu, webgpu, node, wasm, cpu or tensorflow",
    )
    .option(
      "--tf-threads <n>",
      "threads of the wasm backend, 1 to 8 (default 1: more are faster but take cores from the control loop)",
      integer("--tf-threads", 1),
    )
    .option(
      "--profile <name>",
      "hyperparameter profile: quick (the default: small networks, learns reach in minutes on a CPU), eager (quick learning from the 200th real step with 20 SAC updates per step: fewer real steps on a small arm) or paper (the MBPO and SAC papers' sizes: about 1 s per real step on a CPU)",
    )
    .option(
      "--hp <section.key=value>",
      "override one hyperparameter, e.g. --hp sac.batchSize=128",
      collectParam,
      {},
    )
    .option("--urdf <file>", "robot description (default: urdf/arm.urdf)")
    .option("--realtime", "pace the simulator to wall-clock time")
    .option("--reality <preset>", REALITY_HELP)
    .option("--port <device>", "dynamixel: serial device of the servo bus (default /dev/ttyUSB0)")
    .option("--baud <n>", "dynamixel: bus baud rate (default 1000000)", baudRate)
    .option("--calibration <file>", "dynamixel: servo calibration (default calibration/arm.yaml)")
    .option("--no-gravity-compensation", "do not add gravity compensation to commands")
    .option("--no-transition-log", "do not write the run's transitions.mcap")
    .option(
      "--bootstrap <file.mcap>",
      "start with the transitions of a teleop bag or another run's log in the real buffer, model pre-trained on them",
    )
    .option(
      "--joint-states <topic>",
      "--bootstrap from a teleop bag: its JointState topic (default /joint_states)",
    )
    .option(
      "--commands <topic>",
      "--bootstrap from a teleop bag: its Float64MultiArray command topic (default /effort_controller/commands)",
    )
    .option("--json", "one JSON line per episode and a summary line on stdout"),
).action(async (flags) => {
  const logger = startLogging(flags, "train");
  const signal = stopOnSignals(logger);
  try {
    const config = () =>
      buildConfig(flags, {
        driver: flags.driver,
        "task.name": flags.task,
        seed: flags.seed,
        urdf: flags.urdf,
        "sim.realtime": flags.realtime,
        "sim.reality.preset": flags.reality,
        "dynamixel.port": flags.port,
        "dynamixel.baud": flags.baud,
        "dynamixel.calibration": flags.calibration,
        gravity_compensation: flags.gravityCompensation === false ? false : undefined,
      });
    if (flags.driver === "ros2" || (flags.resume === undefined && config().driver === "ros2")) {
      // A ROS arm is driven by the ROS node (services, e-stop, diagnostics): train is its learn mode.
      const outcome = await runNodeCommand({
        ...rosCommon(logger, signal, flags.resume === undefined ? config() : undefined),
        mode: "learn",
        learn: learnOptions(flags),
      });
      if (outcome.summary !== undefined)
        logger.info(formatTrainSummary(outcome.summary, outcome.runDir ?? "(none)"));
      if (outcome.faulted) process.exitCode = 3;
      return;
    }
    const summary = await trainCommand({
      flags: { ...flags, json: flags.json === true },
      logger,
      signal,
      config,
    });
    if (summary.fault !== undefined) process.exitCode = 3;
  } finally {
    await closeLogger(logger);
  }
});

program
  .command("log")
  .description("transition logs (MCAP)")
  .command("summary <file-or-run-dir>")
  .description("topics, message counts, episodes, returns and safety interventions of a transition log")
  .option("--json", "print one JSON object")
  .action(async (file: string, flags: { json?: boolean }) => {
    const { exitCode } = await runLogSummary(file, flags.json === true, process.stdout, process.stderr);
    process.exitCode = exitCode;
  });

withCommonFlags(
  program
    .command("bootstrap")
    .description(
      "turn a rosbag2 MCAP recording of the arm (e.g. teleop) into real transitions: DIR/transitions.mcap for train --bootstrap",
    )
    .requiredOption("--bag <file>", "rosbag2 recording (.mcap; record with `ros2 bag record -s mcap`)")
    .requiredOption("--out <dir>", "where to write transitions.mcap")
    .option("--joint-states <topic>", "sensor_msgs/msg/JointState topic", "/joint_states")
    .option(
      "--commands <topic>",
      "std_msgs/msg/Float64MultiArray effort commands (default /effort_controller/commands where the bag has it, else JointState.effort)",
    )
    .option(
      "--command-joints <names>",
      "joint order of the command arrays, comma-separated (default: the URDF's)",
    )
    .option(
      "--max-gap <s>",
      "longest time without data that is not a gap (default: 3 control periods)",
      Number,
    )
    .option("--urdf <file>", "robot description (default: urdf/arm.urdf)")
    .option("--task <name>", "task whose rewards score the transitions (reach)")
    .option(
      "--from-joint-states",
      "convert from joint states and efforts even if the bag is a transition log",
    )
    .option("--json", "print one JSON object"),
).action(async (flags) => {
  const logger = startLogging(flags, "bootstrap");
  try {
    if (flags.maxGap !== undefined && !(flags.maxGap > 0))
      throw new Error("--max-gap must be a positive number of seconds");
    const report = await runBootstrapCommand({
      config: buildConfig(flags, { urdf: flags.urdf, "task.name": flags.task }),
      bag: resolve(flags.bag),
      outDir: resolve(flags.out),
      jointStatesTopic: flags.jointStates,
      commandsTopic: flags.commands,
      commandJoints: flags.commandJoints?.split(",").map((s: string) => s.trim()),
      maxGap: flags.maxGap,
      fromJointStates: flags.fromJointStates === true,
      logger,
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await closeLogger(logger);
  }
});

withCommonFlags(
  program
    .command("identify <logs...>")
    .description(
      "system identification: fit masses, inertias, armatures and friction to logged transitions (record them with run --policy excite); --out writes the identified URDF",
    )
    .option("--urdf <file>", "the robot description to start from (default: urdf/arm.urdf)")
    .option("--out <file>", "write the identified URDF here")
    .option("--json", "print one JSON object"),
).action(async (files: string[], flags) => {
  const logger = startLogging(flags, "identify");
  try {
    const report = await runIdentifyCommand({
      config: buildConfig(flags, { urdf: flags.urdf }),
      files: files.map((f) => resolve(f)),
      out: flags.out === undefined ? undefined : resolve(flags.out),
      logger,
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await closeLogger(logger);
  }
});

program
  .command("node")
  .description(
    "run the ROS 2 node mbpo_arm (needs a sourced ROS 2 and rclnodejs); its settings are ROS parameters: append --ros-args -p key:=value or --params-file FILE",
  )
  .addOption(
    new Option("--mode <mode>", "run episodes, learn, or follow teleop targets")
      .choices(["run", "learn", "teleop"])
      .default("run"),
  )
  .addOption(
    new Option("--driver <name>", "the arm: on ROS topics, or the embedded twin (sim)")
      .choices(["ros2", "sim"])
      .default("ros2"),
  )
  .option("--policy <name>", "policy in run mode (zero | random | pd | checkpoint:DIR)", "pd")
  .option("--episodes <n>", "episodes per ~/start (0: until ~/stop)", integer("--episodes", 0), 0)
  .option("--autostart", "start at the first joint state instead of waiting for ~/start")
  .option(
    "--out <dir>",
    "run directory: transitions.mcap (run, teleop), or the learning run (learn) (default: ~/.mbpo-arm/runs/node-<time>/)",
  )
  .option("--no-transition-log", "do not write transitions.mcap")
  // Learn mode: the flags of `train`, also node parameters (algo, profile, steps, out, resume, ...).
  .addOption(new Option("--algo <name>", "learn: learner").choices(["mbpo", "sac"]))
  .option("--steps <n>", "learn: real steps to collect (0: until ~/stop)", integer("--steps", 0))
  .option("--resume <dir>", "learn: continue the run in <dir> from its checkpoint")
  .option("--profile <name>", "learn: hyperparameter profile: quick (the default), eager or paper")
  .option("--eval-every <k>", "learn: evaluate after every k-th episode", integer("--eval-every", 1))
  .option("--eval-episodes <m>", "learn: episodes per evaluation", integer("--eval-episodes", 0))
  .option(
    "--checkpoint-every <k>",
    "learn: checkpoint after every k-th episode",
    integer("--checkpoint-every", 1),
  )
  .option("--hp <section.key=value>", "learn: override one hyperparameter (repeatable)", collectParam, {})
  .option("--tf-backend <name>", "learn: force a TensorFlow.js backend")
  .option(
    "--tf-threads <n>",
    "learn: threads of the wasm backend (1 to 8, default 1)",
    integer("--tf-threads", 1),
  )
  .option("--bootstrap <file.mcap>", "learn: start with these transitions in the real buffer")
  .option("--joint-states <topic>", "learn --bootstrap from a teleop bag: its JointState topic")
  .option("--commands <topic>", "learn --bootstrap from a teleop bag: its command topic")
  .option("--log-file <file>", "JSON-lines log file (default: ~/.mbpo-arm/log/<command>-<time>.jsonl)")
  .option("--no-log-file", "do not write a log file")
  .option("-v, --verbose", "debug output on the console")
  // Everything after --ros-args belongs to rcl (remaps, -p name:=value, --params-file).
  .allowUnknownOption()
  .allowExcessArguments()
  .action(async (flags) => {
    const logger = startLogging(flags, "node");
    const signal = stopOnSignals(logger);
    try {
      const outcome = await runNodeCommand({
        mode: flags.mode,
        driver: flags.driver,
        policy: flags.policy,
        episodes: flags.episodes,
        autostart: flags.autostart === true,
        argv: process.argv,
        logger,
        signal,
        outDir:
          flags.transitionLog === false || flags.mode === "learn"
            ? undefined
            : resolve(flags.out ?? defaultRunDir("node")),
        learn: flags.mode === "learn" ? learnOptions(flags) : undefined,
      });
      if (outcome.summary !== undefined)
        logger.info(formatTrainSummary(outcome.summary, outcome.runDir ?? "(none)"));
    } finally {
      await closeLogger(logger);
    }
  });

withCommonFlags(
  program
    .command("describe")
    .description(
      "what the project derives for an arm before its first power-on: joints, limits, reach, home pose, effective inertias, the gains it will use, warnings",
    )
    .option("--urdf <file>", "robot description, .urdf or .xacro (default: urdf/arm.urdf)")
    .option("--json", "print one JSON object"),
).action((flags) => {
  const config = buildConfig({ ...flags, logFile: false }, { urdf: flags.urdf });
  const description = describeArm(config);
  process.stdout.write(
    flags.json === true ? `${JSON.stringify(description)}\n` : `${formatArmDescription(description)}\n`,
  );
});

program
  .command("dynamics")
  .description(
    'read lines of 2n numbers (q then q̇) on stdin; print {"M": [n·n row-major], "bias": [n]} per line (bias: Coriolis, centrifugal and gravity)',
  )
  .requiredOption("--urdf <file>", "robot description (.urdf or .xacro, without arguments)")
  .action(async (flags: { urdf: string }) => {
    await runDynamicsCommand(resolveDataPath(flags.urdf), process.stdin, process.stdout);
  });

program
  .command("bench")
  .description("benchmarks")
  .command("sim")
  .description("physics steps per second of the simulator, beside MuJoCo's mj_step on the same URDF")
  .option("--urdf <file>", "robot description", "urdf/arm.urdf")
  .option("--steps <n>", "physics steps per timing", integer("--steps", 1), 200_000)
  .option("--no-mujoco", "do not run MuJoCo beside it")
  .option("--json", "print one JSON object")
  .action(async (flags: { urdf: string; steps: number; mujoco: boolean; json?: boolean }) => {
    const result = await runSimBenchmark({
      urdf: resolveDataPath(flags.urdf),
      steps: flags.steps,
      mujoco: flags.mujoco,
    });
    process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
  });

registerDynamixelCommand(program); // dynamixel scan | reboot
registerCalibrateCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const verbose = process.argv.includes("--verbose") || process.argv.includes("-v");
  process.stderr.write(`mbpo-arm: ${verbose ? (err as Error).stack : (err as Error).message}\n`);
  process.exitCode = 1;
}

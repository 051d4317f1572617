/**
 * Control tables of the servos the driver runs in current (torque) mode, from the ROBOTIS
 * e-manual: XM430-W350 and the XL330 pair. X-series servos share one address map; what differs is
 * the model number, the current unit and the largest current limit. Models known to lack a current
 * mode (XL430, XC430, 2XL430) are recognised so that they can be refused by name.
 */

/**
 * The rates the X-series "Baud Rate" item (address 8) can select, values 0 to 7 (the XL330 stops
 * at 4 Mbps). A bus runs at one of them or no servo answers.
 */
export const DYNAMIXEL_BAUDS: readonly number[] = [
  9600, 57600, 115200, 1000000, 2000000, 3000000, 4000000, 4500000,
];

/** A control-table field: address and size in bytes. */
export interface Field {
  readonly address: number;
  readonly size: 1 | 2 | 4;
}

/** The X-series (Protocol 2.0) address map: the fields this driver touches. */
export const X_SERIES = {
  modelNumber: { address: 0, size: 2 },
  firmwareVersion: { address: 6, size: 1 },
  id: { address: 7, size: 1 },
  baudRate: { address: 8, size: 1 },
  returnDelayTime: { address: 9, size: 1 },
  operatingMode: { address: 11, size: 1 },
  currentLimit: { address: 38, size: 2 },
  torqueEnable: { address: 64, size: 1 },
  hardwareErrorStatus: { address: 70, size: 1 },
  busWatchdog: { address: 98, size: 1 },
  goalCurrent: { address: 102, size: 2 },
  presentCurrent: { address: 126, size: 2 },
  presentVelocity: { address: 128, size: 4 },
  presentPosition: { address: 132, size: 4 },
} as const satisfies Record<string, Field>;

/** Operating Mode(11) values. */
export const OperatingMode = { CURRENT: 0, VELOCITY: 1, POSITION: 3 } as const;

/** Bus Watchdog(98) unit (s). */
export const BUS_WATCHDOG_UNIT = 0.02;
/** Bus Watchdog(98) reads −1 (0xFF) once it has expired and stopped the servo. */
export const BUS_WATCHDOG_EXPIRED = 0xff;

/** Present Velocity(128) unit for X-series: 0.229 rev/min, in rad/s. */
export const X_VELOCITY_UNIT = (0.229 * 2 * Math.PI) / 60;

/** The one block the driver reads every tick: Present Current(126) … Present Position(132..135). */
export const STATE_BLOCK = { address: 126, size: 10 } as const;
export const STATE_OFFSETS = { current: 0, velocity: 2, position: 6 } as const;

export interface ServoModel {
  readonly name: string;
  readonly modelNumber: number;
  /** Goal/Present Current unit (A). */
  readonly currentUnit: number;
  /** Largest Current Limit(38) value (in current units). */
  readonly maxCurrentLimit: number;
  /** Present Velocity unit (rad/s). */
  readonly velocityUnit: number;
  /** Encoder ticks per output revolution. */
  readonly ticksPerRevolution: number;
  /** Stall torque per ampere near the recommended voltage (N·m/A), a starting value for calibration. */
  readonly nominalTorqueConstant: number;
}

export const SERVO_MODELS: readonly ServoModel[] = [
  {
    // 4.1 N·m at 2.3 A (12 V): 1.78 N·m/A. Current unit "about 2.69 mA", limit 0–1193.
    name: "XM430-W350",
    modelNumber: 1020,
    currentUnit: 0.00269,
    maxCurrentLimit: 1193,
    velocityUnit: X_VELOCITY_UNIT,
    ticksPerRevolution: 4096,
    nominalTorqueConstant: 1.78,
  },
  {
    // 0.52 N·m at 1.47 A (5 V): 0.354 N·m/A. Current unit 1 mA, limit 0–1750.
    name: "XL330-M288",
    modelNumber: 1200,
    currentUnit: 0.001,
    maxCurrentLimit: 1750,
    velocityUnit: X_VELOCITY_UNIT,
    ticksPerRevolution: 4096,
    nominalTorqueConstant: 0.354,
  },
  {
    // 0.215 N·m at 1.47 A (5 V): 0.146 N·m/A. Current unit 1 mA, limit 0–1750.
    name: "XL330-M077",
    modelNumber: 1190,
    currentUnit: 0.001,
    maxCurrentLimit: 1750,
    velocityUnit: X_VELOCITY_UNIT,
    ticksPerRevolution: 4096,
    nominalTorqueConstant: 0.146,
  },
];

/** Protocol 2.0 servos with no current control mode: refused by name. */
export const MODELS_WITHOUT_CURRENT_MODE: ReadonlyMap<number, string> = new Map([
  [1060, "XL430-W250"],
  [1070, "XC430-W150"],
  [1080, "XC430-W240"],
  [1090, "2XL430-W250"],
]);

export function modelByName(name: string): ServoModel | undefined {
  return SERVO_MODELS.find((m) => m.name.toUpperCase() === name.toUpperCase());
}

export function modelByNumber(modelNumber: number): ServoModel | undefined {
  return SERVO_MODELS.find((m) => m.modelNumber === modelNumber);
}

/** A model's name for messages: known name, or "model N". */
export function modelName(modelNumber: number): string {
  return (
    modelByNumber(modelNumber)?.name ?? MODELS_WITHOUT_CURRENT_MODE.get(modelNumber) ?? `model ${modelNumber}`
  );
}

/** Why a model cannot run in current mode under this driver, or undefined when it can. */
export function currentModeRefusal(nameOrNumber: string | number): string | undefined {
  const name =
    typeof nameOrNumber === "number"
      ? modelName(nameOrNumber)
      : (modelByName(nameOrNumber)?.name ?? nameOrNumber.toUpperCase());
  if (SERVO_MODELS.some((m) => m.name === name)) return undefined;
  const supported = SERVO_MODELS.map((m) => m.name).join(", ");
  if ([...MODELS_WITHOUT_CURRENT_MODE.values()].includes(name))
    return `${name} has no current (torque) control mode; the dynamixel driver needs one of ${supported}`;
  return `${name} is not a supported servo (supported: ${supported})`;
}

/** Names of the Hardware Error Status(70) bits, X series. */
const HARDWARE_ERROR_BITS: readonly [number, string][] = [
  [0x01, "input voltage error"],
  [0x04, "overheating error"],
  [0x08, "motor encoder error"],
  [0x10, "electrical shock error"],
  [0x20, "overload error"],
];

/** Hardware Error Status(70) in words, e.g. "overload error, overheating error". */
export function describeHardwareError(status: number): string {
  const names = HARDWARE_ERROR_BITS.filter(([bit]) => status & bit).map(([, name]) => name);
  const unknown = status & ~HARDWARE_ERROR_BITS.reduce((m, [bit]) => m | bit, 0);
  if (unknown !== 0) names.push(`unknown bits 0x${unknown.toString(16)}`);
  return names.length > 0 ? names.join(", ") : "no hardware error bits set";
}

/** Every command den knows, in the order `den --help` lists them. */
import { goodbyeCommand, reloadCommand, statusCommand } from "./control.ts";
import { daemonCommand } from "./daemon.ts";
import { doctorCommand } from "./doctor.ts";
import { initCommand } from "./init.ts";
import { PEER_COMMANDS } from "./peers.ts";
import { relayCommand } from "./relay.ts";
import { chatCommand } from "./chat.ts";
import { VPN_COMMANDS } from "./vpn.ts";
import { TEAM_COMMANDS } from "./team.ts";
import { ENV_COMMANDS } from "./env.ts";
import type { CommandSpec } from "./spec.ts";
import { versionCommand } from "./version.ts";
import { completionsCommand } from "./completions.ts";
import { SERVICE_COMMANDS } from "./service.ts";

export const COMMANDS: readonly CommandSpec[] = [
  initCommand,
  daemonCommand,
  statusCommand,
  ...PEER_COMMANDS,
  ...TEAM_COMMANDS,
  ...ENV_COMMANDS,
  reloadCommand,
  goodbyeCommand,
  doctorCommand,
  chatCommand,
  ...VPN_COMMANDS,
  relayCommand,
  ...SERVICE_COMMANDS,
  completionsCommand,
  versionCommand,
];

/** Saves `den add-peer` / `den rm-peer` into config.toml, keeping the user's comments. */
import { addPeerToConfig, removePeerFromConfig } from "./edit.ts";
import { loadConfig } from "./load.ts";
import { writeConfigFile } from "./write.ts";

export interface PeerInput {
  name: string;
  address?: string;
  fingerprint?: string;
}

/** Adds or updates the peer; an invalid peer throws and leaves the file untouched. */
export async function savePeer(configPath: string, peer: PeerInput): Promise<void> {
  const { source } = await loadConfig(configPath);
  await writeConfigFile(configPath, addPeerToConfig(source, peer, configPath));
}

/** Removes the peer's [[peers]] block; false when there was none. */
export async function deletePeer(configPath: string, name: string): Promise<boolean> {
  const { source } = await loadConfig(configPath);
  const { text, removed } = removePeerFromConfig(source, name, configPath);
  if (removed) await writeConfigFile(configPath, text);
  return removed;
}

/**
 * A deterministic POSIX ustar archive of a model folder, for release assets
 * (a GitHub release holds files, not folders). Same files, same bytes: entries
 * sorted, owner 0:0, mode 0644/0755, mtime 0, no user or group names.
 */
import { createHash } from "node:crypto";
import { createReadStream, readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, join } from "node:path";
import { UserError } from "../errors.js";
import { compare } from "./manifest.js";

const BLOCK = 512;

/** Writes `folder` as `target` (entries under the folder's own name); returns the archive's size and sha256. */
export async function tarFolder(folder: string, target: string): Promise<{ bytes: number; sha256: string }> {
  const root = basename(folder);
  const entries: { name: string; path: string; directory: boolean; size: number }[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort(compare)) {
      if (name.startsWith(".")) continue; // temporaries of an interrupted write
      const path = join(dir, name);
      const info = statSync(path);
      if (info.isDirectory()) {
        entries.push({ name: `${prefix}${name}/`, path, directory: true, size: 0 });
        walk(path, `${prefix}${name}/`);
      } else if (info.isFile()) {
        entries.push({ name: `${prefix}${name}`, path, directory: false, size: info.size });
      }
    }
  };
  entries.push({ name: `${root}/`, path: folder, directory: true, size: 0 });
  walk(folder, `${root}/`);

  const hash = createHash("sha256");
  const handle = await open(target, "w");
  let bytes = 0;
  const write = async (chunk: Uint8Array) => {
    await handle.write(chunk, 0, chunk.length, bytes);
    hash.update(chunk);
    bytes += chunk.length;
  };
  try {
    for (const entry of entries) {
      await write(header(entry.name, entry.size, entry.directory));
      if (entry.directory) continue;
      let copied = 0;
      for await (const chunk of createReadStream(entry.path, { highWaterMark: 4 << 20 })) {
        await write(chunk as Buffer);
        copied += (chunk as Buffer).length;
      }
      if (copied !== entry.size) throw new UserError("changed while it was being archived", { file: entry.path });
      const padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
      if (padding > 0) await write(new Uint8Array(padding));
    }
    await write(new Uint8Array(2 * BLOCK)); // end of archive
  } finally {
    await handle.close();
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** One ustar header block. */
function header(name: string, size: number, directory: boolean): Uint8Array {
  const block = new Uint8Array(BLOCK);
  const { prefix, rest } = splitName(name);
  const put = (offset: number, length: number, text: string) => {
    const bytes = Buffer.from(text, "utf8");
    if (bytes.length > length) throw new UserError(`path too long for a tar header: ${name}`);
    block.set(bytes, offset);
  };
  const octal = (offset: number, length: number, value: number) => put(offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
  put(0, 100, rest);
  octal(100, 8, directory ? 0o755 : 0o644);
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  if (size <= 0o77777777777) {
    octal(124, 12, size);
  } else {
    // GNU base-256 for files of 8 GiB and more.
    block[124] = 0x80;
    let value = size;
    for (let i = 135; i > 124; i--) {
      block[i] = value % 256;
      value = Math.floor(value / 256);
    }
  }
  octal(136, 12, 0); // mtime
  block.fill(0x20, 148, 156); // checksum field counts as spaces
  block[156] = directory ? 0x35 : 0x30; // '5' directory, '0' file
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  put(345, 155, prefix);
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  put(148, 8, `${checksum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

/** ustar keeps up to 100 bytes of name and 155 of prefix, cut at a '/'. */
function splitName(name: string): { prefix: string; rest: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: "", rest: name };
  const trailing = name.endsWith("/") ? 1 : 0;
  for (let cut = name.lastIndexOf("/", name.length - 1 - trailing); cut > 0; cut = name.lastIndexOf("/", cut - 1)) {
    const prefix = name.slice(0, cut);
    const rest = name.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { prefix, rest };
  }
  throw new UserError(`path too long for a tar archive: ${name}`);
}

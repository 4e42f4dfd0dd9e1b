/**
 * What `put PATH` will store: a scan of the input before any byte is read,
 * so that progress has a total and odd entries are reported up front.
 *
 * Decisions:
 * - The path itself is followed if it is a symlink (the user named it).
 * - Symlinks *inside* a directory are skipped with a warning: a manifest has
 *   no link entry, following them could escape the tree or loop, and storing
 *   the target's bytes under the link's name would silently duplicate data.
 * - Sockets, FIFOs and devices are skipped with a warning (they have no
 *   content to store).
 * - Names a manifest cannot carry (see manifest.ts nameProblem: "/", "\",
 *   NUL, over 255 bytes) are skipped with a warning, so a put never fails
 *   half-way on a name; the manifest's 16,384-entry limit per directory is
 *   checked here too, before anything is stored.
 * Children are sorted by name in JavaScript string order, the order the
 * directory manifest requires.
 */
import { lstat, readdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { NotFoundError, PeercloudError, ValidationError } from "../core/errors.js";
import { MAX_DIRECTORY_ENTRIES, nameProblem } from "../core/manifest.js";
import { errorCode } from "./atomic-file.js";

export interface InputFile {
  kind: "file";
  name: string;
  path: string;
  /** Path relative to the put root ("" for a single-file put). */
  relPath: string;
  mode: number;
  sizeBytes: number;
}

export interface InputDirectory {
  kind: "directory";
  name: string;
  path: string;
  relPath: string;
  mode: number;
  children: InputNode[];
  /** Bytes of all files below. */
  sizeBytes: number;
}

export type InputNode = InputFile | InputDirectory;

export interface InputScan {
  root: InputNode;
  /** One line per skipped entry. */
  warnings: string[];
  fileCount: number;
}

/** Scans `path` (a file or a directory tree); `name` overrides the root's name. */
export async function scanInput(path: string, name?: string): Promise<InputScan> {
  const absolute = resolve(path);
  let st;
  try {
    st = await stat(absolute);
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") throw new NotFoundError("path_not_found", `no such file or directory: ${path}`);
    if (code === "EACCES" || code === "EPERM") throw new PeercloudError("permission_denied", `permission denied: ${path}`, 403);
    throw error;
  }
  const rootName = name ?? (basename(absolute) || "root");
  const problem = nameProblem(rootName);
  if (problem) throw new ValidationError(`cannot use ${JSON.stringify(rootName)} as a name: it ${problem}`, "invalid_name");
  const scan: InputScan = { root: undefined as unknown as InputNode, warnings: [], fileCount: 0 };
  const mode = st.mode & 0o7777;
  if (st.isFile()) {
    scan.root = { kind: "file", name: rootName, path: absolute, relPath: "", mode, sizeBytes: st.size };
    scan.fileCount = 1;
  } else if (st.isDirectory()) {
    scan.root = await scanDirectory(absolute, rootName, "", mode, scan);
  } else {
    throw new ValidationError(`not a regular file or directory: ${path}`, "unsupported_file_type");
  }
  return scan;
}

async function scanDirectory(path: string, name: string, relPath: string, mode: number, scan: InputScan): Promise<InputDirectory> {
  const dir: InputDirectory = { kind: "directory", name, path, relPath, mode, children: [], sizeBytes: 0 };
  const entries = await readdir(path, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const childPath = join(path, entry.name);
    const childRel = relPath ? `${relPath}/${entry.name}` : entry.name;
    const problem = nameProblem(entry.name);
    if (problem) {
      scan.warnings.push(`skipped ${JSON.stringify(childRel)}: its name ${problem}`);
      continue;
    }
    if (entry.isSymbolicLink()) {
      scan.warnings.push(`skipped symlink ${childRel} (links are not stored; put the target itself)`);
      continue;
    }
    if (!entry.isFile() && !entry.isDirectory()) {
      scan.warnings.push(`skipped ${childRel}: not a regular file or directory`);
      continue;
    }
    let st;
    try {
      st = await lstat(childPath);
    } catch (error) {
      // Vanished or unreadable between readdir and lstat.
      scan.warnings.push(`skipped ${childRel}: ${errorCode(error) ?? String(error)}`);
      continue;
    }
    if (st.isDirectory()) {
      const child = await scanDirectory(childPath, entry.name, childRel, st.mode & 0o7777, scan);
      dir.children.push(child);
      dir.sizeBytes += child.sizeBytes;
    } else if (st.isFile()) {
      dir.children.push({ kind: "file", name: entry.name, path: childPath, relPath: childRel, mode: st.mode & 0o7777, sizeBytes: st.size });
      dir.sizeBytes += st.size;
      scan.fileCount++;
    }
  }
  if (dir.children.length > MAX_DIRECTORY_ENTRIES) {
    throw new ValidationError(`directory ${relPath || name} has ${dir.children.length} entries; a directory holds at most ${MAX_DIRECTORY_ENTRIES}`, "directory_too_large");
  }
  return dir;
}

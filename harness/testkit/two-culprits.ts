/**
 * Issue 23's done-when window, shared by its end-to-end test and its benchmark: eight commits on
 * the kernel test repository's tip (kernel-repo.ts), of which two broke two things independently
 * (UFFDIO_COPY into anonymous memory fails; every UFFDIO_COPY into shmem hits a new WARN), in a
 * scratch clone, with a nightly plan of uffd-lat's missing-copy on anon and shmem.
 */
import { commitOnto, ensureKernelTestRepo, replaceOnce, type TestPatch } from './kernel-repo.js';
import { movingTree, type MovingTree } from './moving-tree.js';

export const ANON_FAIL = 'userfaultfd: copy only into ranges registered for write protection';
export const SHMEM_WARN = 'shmem: assert minor registration before a userfaultfd fill';

/** A comment-only commit: nothing changes but the build. */
function note(n: number, file: string): TestPatch {
  return {
    name: `note-${n}`,
    subject: `${file.startsWith('mm/shmem') ? 'shmem' : 'userfaultfd'}: document the fill path (${n})`,
    file,
    edit: (text) => `${text}\n/* Fill path, note ${n}: the caller holds the vma lock or mmap_lock for read. */\n`,
  };
}

/** Eight commits on the test repository's tip: two regressions among six harmless ones. */
const STACK: TestPatch[] = [
  note(1, 'mm/userfaultfd.c'),
  {
    // MISSING-mode registrations (every post-copy migration's) now get -EINVAL on anon.
    name: 'anon-fail',
    subject: ANON_FAIL,
    file: 'mm/userfaultfd.c',
    edit: (text) =>
      replaceOnce(
        text,
        '\tstruct folio *folio;\n\n\tif (!*foliop) {\n\t\tret = -ENOMEM;',
        '\tstruct folio *folio;\n\n\tif (!(dst_vma->vm_flags & VM_UFFD_WP))\n\t\treturn -EINVAL;\n\n\tif (!*foliop) {\n\t\tret = -ENOMEM;',
      ),
  },
  note(2, 'fs/userfaultfd.c'),
  note(3, 'mm/shmem.c'),
  {
    // Meant for CONTINUE only: every UFFDIO_COPY into shmem warns (once per boot), and works.
    name: 'shmem-warn',
    subject: SHMEM_WARN,
    file: 'mm/shmem.c',
    edit: (text) =>
      replaceOnce(
        text,
        '\tpgoff_t max_off;\n\n\tif (shmem_inode_acct_blocks(inode, 1)) {',
        '\tpgoff_t max_off;\n\n\tWARN_ON_ONCE(!(dst_vma->vm_flags & VM_UFFD_MINOR));\n\n\tif (shmem_inode_acct_blocks(inode, 1)) {',
      ),
  },
  note(4, 'mm/userfaultfd.c'),
  note(5, 'fs/userfaultfd.c'),
  note(6, 'mm/shmem.c'),
];

/** The window's moving tree and plan, with its commits. */
export interface TwoCulpritWindow extends MovingTree {
  /** The test repository's tip (night 1), the two culprits, the window's tip (night 2). */
  good: string;
  anonFail: string;
  shmemWarn: string;
  tip: string;
}

export async function twoCulpritWindow(
  o: { runs?: number; maxMinutes?: number; onNight?: (id: string, ms: number) => void } = {},
): Promise<TwoCulpritWindow> {
  const k = await ensureKernelTestRepo();
  const m = await movingTree(k.repo, {
    name: 'two-culprits',
    planLines: [
      'backings: [anon, shmem]',
      'suites: [uffd-lat]',
      'filter: missing-copy',
      'quick: true',
      'retries: 0',
      `bisect: { max_minutes: ${o.maxMinutes ?? 30}, runs: ${o.runs ?? 1} }`,
    ],
    ...(o.onNight ? { onNight: o.onNight } : {}),
  });
  const stack = await commitOnto(m.repo, k.tip, STACK);
  return {
    ...m,
    good: k.tip,
    anonFail: stack[1] ?? '',
    shmemWarn: stack[4] ?? '',
    tip: stack[7] ?? '',
  };
}

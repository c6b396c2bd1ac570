/**
 * What a selftest build produced, as records: each program (built, unavailable or failed, with
 * what the suites need to run it) and the build (its cache directory and key). selftests/ writes
 * them (manifest.json); the kernel builder's metadata.json embeds a build.
 */
import type { JSONSchemaType } from 'ajv';
import { BACKINGS, type Backing } from './types.js';

/** One entry of uffd-unit-tests.c's uffd_tests[]: the memory types it runs on, in mem_types[] order. */
export interface UnitTestCase {
  test: string;
  mems: string[];
}

export interface SelftestProgram {
  name: string;
  /** 'built', or 'unavailable' (tree too old: a skip), or 'failed' (did not compile: an error). */
  status: 'built' | 'unavailable' | 'failed';
  path?: string;
  reason?: string;
  /** Main source file it was built from (e.g. 'uffd-stress.c', or 'userfaultfd.c' before 6.4). */
  source?: string;
  /** The program's own word for each backing it accepts, read from its test-type parser. */
  backingArgs?: Partial<Record<Backing, string>>;
  /** Shared hugetlb maps a hugetlbfs file named by the 4th argument (userfaultfd.c). */
  hugetlbfsFileArg?: boolean;
  /** uffd-unit-tests: every uffd_tests[] entry and the memory types it runs on, in source order. */
  cases?: UnitTestCase[];
  /** Suite mm: how run_vmtests.sh (or faultline, for memfd) invokes it. */
  mmRuns?: MmRun[];
  /** A kselftest shell script: run with the bash pushed beside it. */
  script?: boolean;
  /** run_vmtests.sh: the categories its -t accepts (none before 6.4's categories). */
  scriptCategories?: string[];
}

/** One invocation of an mm selftest, read from the tree's run_vmtests.sh. */
export interface MmRun {
  category: string;
  /** Arguments after the program name. */
  args: string[];
  backings: Backing[];
  /** run_vmtests.sh runs it only with -d. */
  destructive?: boolean;
  /** Why faultline cannot give it the arguments run_vmtests.sh would (it runs as a skip saying so). */
  unresolved?: string;
  /** A hugetlbfs run_vmtests.sh mounts for it, relative to the programs' directory (6.1: ./huge). */
  hugetlbfsDir?: string;
}

const backingArg = { type: 'string', minLength: 1, nullable: true } as const;
const programSchema: JSONSchemaType<SelftestProgram> = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'status'],
  properties: {
    name: { type: 'string', minLength: 1 },
    status: { type: 'string', enum: ['built', 'unavailable', 'failed'] },
    path: { type: 'string', nullable: true },
    reason: { type: 'string', nullable: true },
    source: { type: 'string', nullable: true },
    backingArgs: {
      type: 'object',
      nullable: true,
      additionalProperties: false,
      required: [],
      properties: {
        anon: backingArg,
        shmem: backingArg,
        'shmem-private': backingArg,
        'shmem-thp': backingArg,
        hugetlb: backingArg,
        'hugetlb-private': backingArg,
        'hugetlb-1g': backingArg,
      },
    },
    hugetlbfsFileArg: { type: 'boolean', nullable: true },
    cases: {
      type: 'array',
      nullable: true,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['test', 'mems'],
        properties: {
          test: { type: 'string', minLength: 1 },
          mems: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    mmRuns: {
      type: 'array',
      nullable: true,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['category', 'args', 'backings'],
        properties: {
          category: { type: 'string', minLength: 1 },
          args: { type: 'array', items: { type: 'string' } },
          backings: { type: 'array', minItems: 1, items: { type: 'string', enum: BACKINGS } },
          destructive: { type: 'boolean', nullable: true },
          unresolved: { type: 'string', nullable: true },
          hugetlbfsDir: { type: 'string', minLength: 1, nullable: true },
        },
      },
    },
    script: { type: 'boolean', nullable: true },
    scriptCategories: { type: 'array', items: { type: 'string', minLength: 1 }, nullable: true },
  },
};
export const MANIFEST_SCHEMA: JSONSchemaType<SelftestProgram[]> = { type: 'array', items: programSchema };

/** A SelftestBuild as the kernel builder's metadata.json embeds it. */
export const selftestBuildSchema: JSONSchemaType<SelftestBuild> = {
  type: 'object',
  required: ['dir', 'key', 'tree', 'programs'],
  properties: {
    dir: { type: 'string' },
    key: { type: 'string' },
    tree: { type: 'string' },
    programs: MANIFEST_SCHEMA,
  },
};

export interface SelftestBuild {
  dir: string;
  key: string;
  tree: string;
  programs: SelftestProgram[];
}

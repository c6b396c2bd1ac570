import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/project.js';
import { judgeProbeOutput } from './accel.js';

const fixture = (name: string): string => readFileSync(join(PROJECT_ROOT, 'harness', 'vm', 'fixtures', name), 'utf8');

t.test(
  'a KVM internal error (captured on a host where /dev/kvm exists but guests die) decides TCG at once',
  async (t) => {
    const out = fixture('kvm-probe.internal-error.txt');
    // QEMU pauses after this error instead of exiting: the first line alone must decide.
    const first = out.split('\n')[0] ?? '';
    const v = judgeProbeOutput(`${first}\n`, false);
    t.equal(v?.accel, 'tcg');
    t.match(v?.note, /KVM internal error\. Suberror: 1/);
    t.equal(judgeProbeOutput(out, false)?.accel, 'tcg');
  },
);

t.test('a guest that runs decides KVM once it reaches its expected panic (real probe guest output)', async (t) => {
  const out = fixture('kvm-probe.guest-ran-tcg.txt');
  const panicAt = out.indexOf('Kernel panic');
  t.ok(panicAt > 0, "the capture ends in the probe guest's panic");
  t.equal(judgeProbeOutput(out.slice(0, panicAt), false), undefined, 'booting but not done: undecided');
  t.same(judgeProbeOutput(out, false), { accel: 'kvm', note: 'KVM probe booted a guest' });
  t.equal(judgeProbeOutput(out.slice(0, panicAt), true)?.accel, 'kvm', 'QEMU exited after the banner without an error');
});

t.test('QEMU that exits before the guest printed anything is not KVM', async (t) => {
  t.match(judgeProbeOutput('', true), { accel: 'tcg', note: /no output/ });
  t.match(
    judgeProbeOutput('qemu-system-x86_64: -accel kvm: Could not access KVM kernel module: Permission denied\n', true),
    { accel: 'tcg', note: /Could not access KVM kernel module/ },
  );
  t.equal(judgeProbeOutput('SeaBIOS\n', false), undefined);
});

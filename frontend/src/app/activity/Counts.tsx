import { useCounts } from '../../lib/sync/index.ts';

const LABELS: [key: string, label: string][] = [
  ['page', 'Pages'],
  ['attachment', 'Attachments'],
];

/** Live totals of live entities: `Pages 12`, `Attachments 3`. */
export function Counts() {
  const counts = useCounts();
  return (
    <section aria-labelledby="counts-title" className="panel counts">
      <h2 id="counts-title">Counts</h2>
      <dl>
        {LABELS.map(([key, label]) => (
          <div key={key}>
            <dt>{label}</dt> <dd>{counts[key] ?? '–'}</dd>{' '}
          </div>
        ))}
      </dl>
    </section>
  );
}

// Minimal stroke icons (24×24) for the navigation; no icon font or package needed.
const paths: Record<string, string> = {
  dashboard: 'M4 4h7v7H4zM13 4h7v4h-7zM13 10h7v10h-7zM4 13h7v7H4z',
  datanets:
    'M4 6c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3zM4 6v6c0 1.7 3.6 3 8 3s8-1.3 8-3V6M4 12v6c0 1.7 3.6 3 8 3s8-1.3 8-3v-6',
  factory: 'M12 3l9 5-9 5-9-5 9-5zM3 13l9 5 9-5M3 17.5l9 5 9-5',
  models: 'M12 2.5l8.5 4.75v9.5L12 21.5l-8.5-4.75v-9.5L12 2.5zM3.5 7.25L12 12l8.5-4.75M12 12v9.5',
  market:
    'M4 9l1.5-5h13L20 9M4 9h16M4 9c0 1.7 1.3 3 3 3s3-1.3 3-3c0 1.7 1.3 3 3 3s3-1.3 3-3c0 1.7 1.3 3 3 3M5 12v8h14v-8M10 20v-5h4v5',
  agents: 'M9 4h6v4H9zM12 8v3M5 11h14v9H5zM9 15h.01M15 15h.01M9 18h6',
  playground: 'M4 5h16v11H9l-5 4V5zM8 9.5h8M8 12.5h5',
  rewards:
    'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM14.8 8.8c-.5-.8-1.5-1.3-2.8-1.3-1.7 0-2.8.9-2.8 2.1 0 2.9 5.8 1.5 5.8 4.5 0 1.2-1.2 2.2-3 2.2-1.3 0-2.4-.5-3-1.4M12 5.8v1.7M12 16.3v1.9',
  proposals:
    'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM12 7a5 5 0 1 0 0 10 5 5 0 0 0 0-10zM12 11a1 1 0 1 0 0 2 1 1 0 0 0 0-2z',
  governance: 'M3 9.5L12 4l9 5.5M5 10v8M9.5 10v8M14.5 10v8M19 10v8M3 20.5h18',
  keys: 'M14.5 3.5a6 6 0 1 0 0 12 6 6 0 0 0 0-12zM10.3 13.7L3 21M6 18l2.5 2.5M8.5 15.5L11 18M16 8.5h.01',
  wallet:
    'M3 7.5A2.5 2.5 0 0 1 5.5 5H19v4M3 7.5v10A2.5 2.5 0 0 0 5.5 20H21v-11H5.5A2.5 2.5 0 0 1 3 7.5zM16.5 14.5h.01',
  copy: 'M9 9h11v11H9zM5 15H4V4h11v1',
  refresh:
    'M20 11a8 8 0 0 0-14.7-4.3L4 8.5M4 4v4.5h4.5M4 13a8 8 0 0 0 14.7 4.3l1.3-1.8M20 20v-4.5h-4.5',
  close: 'M6 6l12 12M18 6L6 18',
  alert: 'M12 3l10 18H2L12 3zM12 10v5M12 18h.01',
  info: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM12 11v6M12 7.5h.01',
};

export type IconName = keyof typeof paths;

export function Icon({ name, size = 18 }: { name: IconName; size?: number }) {
  return (
    <svg
      className="icon"
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      strokeWidth={1.75}
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={paths[name]} />
    </svg>
  );
}

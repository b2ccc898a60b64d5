"""The admin's "Page views" dashboard: figures from the daily and key totals, SVG charts."""

"""Real-browser and crawl tests of the built documentation site."""

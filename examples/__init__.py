"""Programs that use Sluice from outside its packages: `demo` (`make demo`). Not installed."""

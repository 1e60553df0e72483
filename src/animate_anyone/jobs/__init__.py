"""Jobs: files in, files out. Each public function here is what one CLI subcommand calls (``animate``,
``init-model``); they compose the library (model directory, pipeline, pose tools) and add nothing of their own
beyond argument checks, progress and atomic output."""

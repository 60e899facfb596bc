"""uhr_cyclegan: contextual colorisation and denoising of low-light UHR video (Anantrasirichai & Bull)."""

// placeholder: written with the web client

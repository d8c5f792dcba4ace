for (const button of document.querySelectorAll("button")) {
  button.addEventListener("click", () => {
    document.getElementById("log").textContent += `clicked ${button.textContent}; `;
  });
}
